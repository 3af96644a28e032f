// Package natstest runs real nats-server processes for tests: a JetStream
// cluster of n nodes on free loopback ports, each of which a test can kill
// with -9, stop gracefully and restart on the same ports and storage.
//
// The server is the nats-server Go module pinned in tools/go.mod, built once
// into bin/tools/nats-server (make tools builds it too); NATSTEST_SERVER
// names another binary. Nothing here needs the machine's NATS.
package natstest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/testkit"
)

// ServerEnv names a nats-server binary to use instead of building the
// pinned one.
const ServerEnv = "NATSTEST_SERVER"

var (
	buildMu  sync.Mutex
	builtBin string
)

// Binary returns the pinned nats-server, building it from tools/ into
// bin/tools/nats-server when it is missing or older than tools/go.mod.
// Several test binaries may call it at once: a file lock serialises the
// build.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ServerEnv); p != "" {
		return p
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if builtBin != "" {
		return builtBin
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "bin", "tools", "nats-server")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if fresh(out, filepath.Join(root, "tools", "go.mod")) {
		builtBin = out
		return out
	}
	t.Logf("natstest: building the pinned nats-server into %s (once)", out)
	cmd := exec.Command("go", "build", "-o", out+".tmp", "github.com/nats-io/nats-server/v2")
	cmd.Dir = filepath.Join(root, "tools")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build nats-server: %v\n%s", err, b)
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		t.Fatal(err)
	}
	builtBin = out
	return out
}

func fresh(bin, gomod string) bool {
	b, err := os.Stat(bin)
	if err != nil {
		return false
	}
	m, err := os.Stat(gomod)
	return err == nil && !b.ModTime().Before(m.ModTime())
}

// repoRoot is the nearest parent of the working directory holding
// tools/go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("natstest: no tools/go.mod above the working directory; set " + ServerEnv)
		}
		dir = parent
	}
}

// Node is one nats-server process of a Cluster.
type Node struct {
	Name        string
	ClientPort  int
	ClusterPort int
	HTTPPort    int

	bin     string
	conf    string
	logPath string
	t       testing.TB

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Cluster is n nats-server processes routed to each other, with JetStream.
type Cluster struct {
	Nodes []*Node
	Name  string
}

// StartCluster starts an n-node JetStream cluster (n = 1 is a single
// server without clustering) and waits until JetStream answers on every
// node. The nodes are killed and their storage removed when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return startCluster(t, n, "")
}

// ThreeNodes begins a test on a three-node cluster: it skips the test under
// -short (three nats-server processes are not short), starts the cluster,
// connects to it, and returns the cluster, the connection's JetStream and a
// context that ends after timeout or with the test.
func ThreeNodes(t *testing.T, timeout time.Duration) (*Cluster, jetstream.JetStream, context.Context) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a three-node NATS cluster")
	}
	c := StartCluster(t, 3)
	_, js := c.Connect(t)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return c, js, ctx
}

// StartServer starts one JetStream server with extra appended to its
// configuration (natsauth.Operator.ServerConfig puts it in operator mode),
// and waits until it is healthy.
func StartServer(t testing.TB, extra string) *Cluster {
	t.Helper()
	return startCluster(t, 1, extra)
}

func startCluster(t testing.TB, n int, extra string) *Cluster {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	c := &Cluster{Name: "hs" + strconv.Itoa(os.Getpid()%100000)}
	ports := testkit.FreePorts(t, 3*n)
	routes := make([]string, n)
	for i := range n {
		c.Nodes = append(c.Nodes, &Node{Name: fmt.Sprintf("n%d", i+1), ClientPort: ports[3*i],
			ClusterPort: ports[3*i+1], HTTPPort: ports[3*i+2], bin: bin, t: t})
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3*i+1])
	}
	for _, nd := range c.Nodes {
		nodeDir := filepath.Join(dir, nd.Name)
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			t.Fatal(err)
		}
		var conf strings.Builder
		fmt.Fprintf(&conf, "server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n", nd.Name, nd.ClientPort, nd.HTTPPort)
		// Small limits keep n nodes cheap on a shared test machine.
		fmt.Fprintf(&conf, "jetstream {\n  store_dir: %q\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}\n", filepath.Join(nodeDir, "js"))
		if n > 1 {
			fmt.Fprintf(&conf, "cluster {\n  name: %s\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", c.Name, nd.ClusterPort, strings.Join(routes, ", "))
		}
		conf.WriteString(extra)
		nd.conf = filepath.Join(nodeDir, "nats.conf")
		nd.logPath = filepath.Join(nodeDir, "nats.log")
		if err := os.WriteFile(nd.conf, []byte(conf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range c.Nodes {
		nd.start()
	}
	t.Cleanup(func() {
		for _, nd := range c.Nodes {
			nd.Kill()
			if t.Failed() {
				t.Logf("natstest: last lines of %s's log:\n%s", nd.Name, nd.tail())
			}
		}
	})
	c.WaitHealthy(t, 60*time.Second)
	if n > 1 {
		c.waitPlaceable(t, 60*time.Second)
	}
	return c
}

// waitPlaceable waits until a stream of one replica per node can be placed.
// A fresh cluster is healthy before its meta leader has heard from every
// node, and until then it refuses such a stream with "no suitable peers for
// placement, peer offline" (hipersync's provisioning waits that out; a test
// should begin on the cluster it asked for).
func (c *Cluster) waitPlaceable(t testing.TB, timeout time.Duration) {
	t.Helper()
	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	probe := jetstream.StreamConfig{Name: "natstest_placement", Subjects: []string{"natstest.placement"},
		Storage: jetstream.MemoryStorage, Replicas: len(c.Nodes)}
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.CreateStream(actx, probe)
		if err == nil {
			err = js.DeleteStream(actx, probe.Name)
		}
		acancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("natstest: no stream of %d replicas placed within %s: %v", len(c.Nodes), timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// URL lists every node's client URL, as a client configured for a cluster
// holds them.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Nodes))
	for i, nd := range c.Nodes {
		urls[i] = nd.ClientURL()
	}
	return strings.Join(urls, ",")
}

// ClientURL is the node's client URL.
func (nd *Node) ClientURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", nd.ClientPort) }

// LogPath is where the node writes its log (kept in the test's temp dir).
func (nd *Node) LogPath() string { return nd.logPath }

func (nd *Node) start() {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	f, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		nd.t.Fatal(err)
	}
	cmd := exec.Command(nd.bin, "-c", nd.conf)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		nd.t.Fatalf("start nats-server %s: %v", nd.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	nd.cmd, nd.done = cmd, done
}

// Running reports whether the node's process is up.
func (nd *Node) Running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return false
	}
	select {
	case <-nd.done:
		return false
	default:
		return true
	}
}

// Kill ends the node with SIGKILL, as a crashed machine would, and waits
// for the process to be gone.
func (nd *Node) Kill() { nd.signal(syscall.SIGKILL) }

// Stop ends the node gracefully (SIGTERM), as a rolling restart does.
func (nd *Node) Stop() { nd.signal(syscall.SIGTERM) }

// Freeze stops the node's process (SIGSTOP) without ending it, as a
// machine stalled by its hypervisor or a long pause would: its peers and
// clients keep their connections and queue what they send it. Thaw lets it
// go on.
func (nd *Node) Freeze() { nd.send(syscall.SIGSTOP) }

// Thaw lets a frozen node go on (SIGCONT).
func (nd *Node) Thaw() { nd.send(syscall.SIGCONT) }

func (nd *Node) send(sig syscall.Signal) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		_ = nd.cmd.Process.Signal(sig)
	}
}

func (nd *Node) signal(sig syscall.Signal) {
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart starts a stopped or killed node again on its ports and storage.
func (nd *Node) Restart() {
	if nd.Running() {
		nd.t.Fatalf("natstest: restart of %s while it runs", nd.Name)
	}
	nd.start()
}

// Healthy reports whether the node's /healthz says JetStream is current.
func (nd *Node) Healthy(ctx context.Context) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/healthz", nd.HTTPPort), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitHealthy waits until every running node is healthy (JetStream meta
// group with a leader, every stream current on the node).
func (c *Cluster) WaitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, nd := range c.Nodes {
		for nd.Running() && !nd.Healthy(ctx) {
			select {
			case <-ctx.Done():
				t.Fatalf("natstest: node %s not healthy within %s\n%s", nd.Name, timeout, nd.tail())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

func (nd *Node) tail() string {
	f, err := os.Open(nd.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 40 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// Node returns the node named name (n1, n2, ...), nil when there is none.
func (c *Cluster) Node(name string) *Node {
	for _, nd := range c.Nodes {
		if nd.Name == name {
			return nd
		}
	}
	return nil
}

// StreamLeader returns the node leading stream, asking the cluster.
func (c *Cluster) StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (*Node, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, fmt.Errorf("stream %s has no leader", stream)
	}
	if nd := c.Node(info.Cluster.Leader); nd != nil {
		return nd, nil
	}
	return nil, fmt.Errorf("stream %s led by unknown server %s", stream, info.Cluster.Leader)
}

// Connect opens a client connection to the whole cluster that reconnects
// forever, closed when the test ends.
func (c *Cluster) Connect(t testing.TB, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(c.URL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

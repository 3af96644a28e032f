package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/testkit"
)

// binaries are the deployables the test runs, built once per test run.
var binaries = []string{"hiper-sim", "token-broker", "catalog-poller", "stock-poller", "order-forwarder", "invoice-watcher", "console", "hipersync"}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// build compiles every binary into a temporary folder, from the workspace
// the test runs in.
func build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := exec.Command("go", "env", "GOWORK").Output()
		if err != nil || strings.TrimSpace(string(root)) == "" {
			buildErr = fmt.Errorf("find the workspace (go env GOWORK): %v", err)
			return
		}
		dir := filepath.Dir(strings.TrimSpace(string(root)))
		binDir, buildErr = os.MkdirTemp("", "hipersync-e2e-bin")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", binDir + "/"}
		for _, b := range binaries {
			if b == "hipersync" {
				args = append(args, "./cmd/hipersync")
			} else {
				args = append(args, "./services/"+b)
			}
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func masterKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// proc is one running binary; its output goes to a file named in failures.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

// start runs binary name with env added to a minimal environment.
func start(t testing.TB, bin, name string, env map[string]string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	registerLog(t, logPath)
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and waits, as Kubernetes does; it fails the test when
// the process does not stop cleanly in time.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("%s did not stop cleanly: %v (log: %s)\n%s", p.name, err, p.log, tail(p.log))
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		testkit.Recv(t, p.done, 30*time.Second, p.name+" to exit once killed")
		t.Errorf("%s did not stop within 30s of SIGTERM (log: %s)", p.name, p.log)
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// waitReady polls url until it answers 200.
func waitReady(t testing.TB, p *proc, url string) {
	t.Helper()
	const within = 30 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	exited, ready := false, false
	var exit error
	testkit.Until(within, func() bool {
		select {
		case exit = <-p.done:
			exited = true
			return true
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
		}
		return ready
	})
	switch {
	case exited:
		t.Fatalf("%s exited before it was ready: %v\n%s", p.name, exit, tail(p.log))
	case !ready:
		t.Fatalf("%s not ready at %s within %s\n%s", p.name, url, within, tail(p.log))
	}
}

// cli runs the hipersync binary and returns its output, failing on a
// non-zero exit.
func cli(t testing.TB, bin string, env map[string]string, stdin string, args ...string) string {
	t.Helper()
	out, err := cliErr(bin, env, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cliErr runs the hipersync binary and returns its output, and an error
// with the output on a non-zero exit.
func cliErr(bin string, env map[string]string, stdin string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(bin, "hipersync"), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("hipersync %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// TestMain removes the binaries the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

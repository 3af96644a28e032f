package forwarder

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// TestCrashes runs the order-forwarder binary as its own process and
// SIGKILLs it six times while 1,000 orders flow and Hiper answers one create
// in ten with its own 503, restarting it each time: three kills at random
// moments, three while Hiper holds a create (which it stores when the hold
// ends, its answer lost with the process). Afterwards, from what hiper-sim
// received: every order is in Hiper exactly once, or is under review (at
// least one per kill during a create, at most one per kill: the order being
// posted when the process died), and none is lost.
//
// Every kill lands while orders are in flight, on any machine: Hiper takes
// crashLatency over each create and a replica posts one order of a tenant at
// a time, so the orders a kill leaves (at least crashMargin) take seconds
// whatever the CPU. Each kill counts them from the stream and fails the test
// if none was left.
func TestCrashes(t *testing.T) {
	crashes(t, hipersim.Faults{ErrorRate: 0.1, ErrorStatus: 503, Endpoints: []string{hipersim.EndpointCreateOrder}})
}

// TestCrashesBehindAFailingProxy is TestCrashes behind a proxy that, for
// one create in ten, loses Hiper's answer after Hiper stored the order and
// answers its own 503 page instead. Those orders are under review too; Hiper
// holds every order at most once.
func TestCrashesBehindAFailingProxy(t *testing.T) {
	crashes(t, hipersim.Faults{FailAfterCommitRate: 0.1, ErrorStatus: 503, Answer: hipersim.AnswerProxy,
		Endpoints: []string{hipersim.EndpointCreateOrder}})
}

// crashLatency is how long Hiper takes over a create in the crash tests
// (the benchmarks' hiper=20ms): with ORDER_TENANT_INFLIGHT=1, n orders of a
// tenant take at least n × crashLatency, on the fastest machine too.
const crashLatency = 20 * time.Millisecond

// crashMargin is how many orders a random kill leaves at least: a second of
// work at crashLatency. Between the test seeing its target and the kill, a
// few milliseconds pass, a few orders at most.
const crashMargin = 50

// crashHold is how long Hiper holds the create a kill lands in: shorter
// than ORDER_HIPER_TIMEOUT, so the replica is still waiting when it dies.
const crashHold = 1500 * time.Millisecond

func crashes(t *testing.T, faults hipersim.Faults) {
	if testing.Short() {
		t.Skip("builds and kills a process; skipped with -short")
	}
	t.Parallel()
	const (
		total = 1000
		kills = 6
	)
	faults.LatencyMs = int(crashLatency / time.Millisecond)
	held := faults
	held.LatencyMs = int(crashHold / time.Millisecond)
	start := time.Now()
	bin := filepath.Join(t.TempDir(), "order-forwarder")
	build := exec.Command("go", "build", "-o", bin, "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the forwarder: %v\n%s", err, out)
	}

	h := newHarness(t, harnessOptions{})
	h.st.Sim.Sim.SetFaults(faults)
	env := append(h.st.Environ(),
		"TOKEN_BROKER_ADDR="+h.st.BrokerAddr,
		"HIPER_BASE_URL="+h.st.Sim.URL,
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_LEVEL=warn",
		"HIPERSYNC_INSECURE=1", // the test's token-broker serves plaintext
		"OTEL_TRACES_EXPORTER=none",
		// One create of the tenant at a time (the default): what makes
		// crashLatency a floor, and a kill cost at most one order.
		"ORDER_TENANT_INFLIGHT=1",
		// Short enough that a killed replica's orders come back, and its
		// lease runs out, within the test's time.
		"ORDER_ACK_WAIT=2s",
		"ORDER_HIPER_TIMEOUT=2s",
		"ORDER_RETRY_BASE=50ms",
		"ORDER_RETRY_MAX=500ms",
		"ORDER_MAX_ATTEMPTS=30",
		// Three 503s in a row open the circuit now and then: probes on the
		// same compressed scale as the retries.
		"ORDER_CIRCUIT_PROBE_BASE=100ms",
		"ORDER_CIRCUIT_PROBE_MAX=1s",
	)
	p := &child{t: t, bin: bin, env: env}
	p.start()
	t.Cleanup(p.stop)

	ids := make([]string, total)
	for i := range total {
		ids[i] = fmt.Sprintf("C%04d", i)
		h.approve("acme", h.order("acme", ids[i], 1+i%3), "store-"+ids[i])
	}

	settled := func() int {
		n := 0
		for _, k := range settledKinds {
			n += h.seen.count(k)
		}
		return n
	}
	midPost := 0
	for k := range kills {
		// A random moment while orders flow: after 20 to 120 more of them
		// have gone through.
		target := min(settled()+20+rand.IntN(100), total-crashMargin)
		testkit.WaitFor(t, 60*time.Second, fmt.Sprintf("orders flowing before kill %d", k+1), func() bool { return settled() >= target })
		moment := "at random"
		if k%2 == 1 {
			// Then, every other kill, while Hiper holds the next create: the
			// replica dies between recording "sending" and the answer.
			moment = "during a create"
			midPost++
			h.st.Sim.Sim.SetFaults(held)
			posted := h.posted()
			testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("a create held before kill %d", k+1), func() bool { return h.posted() > posted })
		}
		p.kill()
		h.st.Sim.Sim.SetFaults(faults)
		// Nothing settles while no replica runs: the stream's count is the
		// count at the kill (h.seen reads behind, and would say more left).
		left := total - settledOnStream(t, h, "acme")
		t.Logf("kill %d (%s): %d of %d orders not settled", k+1, moment, left, total)
		if left <= 0 {
			t.Errorf("kill %d came after every order had settled: it tested no crash", k+1)
		}
		p.start()
	}
	testkit.WaitFor(t, 90*time.Second, "every order settled", func() bool { return settled() >= total })

	inHiper := map[string][]hipersim.Order{}
	for _, o := range h.st.Sim.Sim.Orders(h.st.Keys["acme"]) {
		inHiper[o.Body.StoreOrderID] = append(inHiper[o.Body.StoreOrderID], o)
	}
	review, lost := 0, 0
	for _, id := range ids {
		rec := h.record("acme", id)
		got := inHiper[id]
		switch rec.State {
		case orders.StateAccepted:
			if len(got) != 1 || got[0].ID != rec.HiperOrderID {
				t.Errorf("order %s accepted as %s; Hiper has it %d times", id, rec.HiperOrderID, len(got))
			}
		case orders.StateNeedsReview:
			review++
			if strings.Contains(rec.Answer, "HTTP 503") {
				lost++ // the proxy's page: Hiper's answer lost, not a kill
			}
			if len(got) > 1 {
				t.Errorf("order %s under review is in Hiper %d times", id, len(got))
			}
		default:
			t.Errorf("order %s lost: %s (%s)", id, rec.State, rec.LastError)
		}
	}
	if review-lost > kills {
		t.Errorf("%d orders under review after %d kills and %d lost answers; want at most one per kill", review, kills, lost)
	}
	if review-lost < midPost {
		t.Errorf("%d orders under review after %d kills during a create and %d lost answers; want one per such kill", review, midPost, lost)
	}
	if faults.FailAfterCommitRate > 0 && lost == 0 {
		t.Error("the proxy never lost an answer")
	}
	faulted := h.st.Sim.Sim.Stats().Requests[hipersim.EndpointCreateOrder] - len(h.st.Sim.Sim.Orders(h.st.Keys["acme"]))
	t.Logf("%d orders, %d kills, %d under review (%d lost answers), %d in Hiper, %d create calls answered 503 or refused, %s",
		total, kills, review, lost, len(h.st.Sim.Sim.Orders(h.st.Keys["acme"])), faulted, time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		t.Logf("forwarder output (tail):\n%s", p.tail())
	}
}

// settledOnStream counts the order.accepted and order.needs_review events
// of tenant the HIPER stream holds.
func settledOnStream(t *testing.T, h *harness, tenant string) int {
	t.Helper()
	ctx := context.Background()
	stream, err := h.st.JS.Stream(ctx, h.st.NS.Stream(events.StreamHiper))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(h.st.NS.HiperSubject(tenant, ">")))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range settledKinds {
		n += int(info.State.Subjects[h.st.NS.HiperSubject(tenant, k)])
	}
	return n
}

// settledKinds are the events that settle an order in the crash tests.
var settledKinds = []events.Kind{events.KindOrderAccepted, events.KindOrderNeedsReview}

// child is the forwarder process of TestCrashes.
type child struct {
	t   *testing.T
	bin string
	env []string

	mu  sync.Mutex
	cmd *exec.Cmd
	out bytes.Buffer
}

func (c *child) start() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	cmd := exec.Command(c.bin)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = &lockedWriter{c}, &lockedWriter{c}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start the forwarder: %v", err)
	}
	c.cmd = cmd
}

// kill sends SIGKILL: no drain, no goodbye, as when a node dies.
func (c *child) kill() {
	c.t.Helper()
	c.mu.Lock()
	cmd := c.cmd
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	if err := cmd.Process.Kill(); err != nil {
		c.t.Fatalf("kill the forwarder: %v", err)
	}
	_ = cmd.Wait()
}

func (c *child) stop() { c.kill() }

func (c *child) tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.out.String()
	if len(s) > 8000 {
		s = s[len(s)-8000:]
	}
	return strings.TrimSpace(s)
}

type lockedWriter struct{ c *child }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.out.Write(p)
}

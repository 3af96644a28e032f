package forwarder

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// exactlyOnce checks that every order is in Hiper once and accepted once.
func (h *harness) exactlyOnce(tenant string, ids []string) {
	h.t.Helper()
	for _, id := range ids {
		h.waitState(tenant, id, orders.StateAccepted, wait)
		if got := h.simOrders(tenant, id); len(got) != 1 {
			h.t.Errorf("order %s: %d in Hiper, want 1", id, len(got))
		}
		// The event is published after the record turns accepted: wait for
		// it, then count.
		testkit.Until(wait, func() bool { return len(h.seen.of(events.KindOrderAccepted, id)) > 0 })
		if got := h.seen.of(events.KindOrderAccepted, id); len(got) != 1 {
			h.t.Errorf("order %s: %d order.accepted events, want 1", id, len(got))
		}
	}
}

func (h *harness) publishMany(tenant, prefix string, n int) []string {
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s%d", prefix, i)
		h.approve(tenant, h.order(tenant, ids[i], 1+i%2), "store-"+ids[i])
	}
	return ids
}

// TestTokensExpireMidRun: Hiper forgets every token while orders flow; the
// 401s cost a new token, never an order twice.
func TestTokensExpireMidRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	var ids []string
	for round := range 4 {
		ids = append(ids, h.publishMany("acme", fmt.Sprintf("T%d-", round), 15)...)
		h.st.Sim.Sim.SetFaults(hipersim.Faults{ExpireTokensNow: true})
	}
	h.exactlyOnce("acme", ids)
	if n := h.st.Sim.Sim.Stats().TokensIssued[h.st.Keys["acme"]]; n < 2 {
		t.Errorf("%d tokens issued; the expiry was never noticed", n)
	}
}

// TestStormOf503sThenRecovery: Hiper answers 503 to every create for a
// while; the orders wait in received and go through once it recovers.
func TestStormOf503sThenRecovery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	cfg := testConfig()
	cfg.MaxAttempts = 1000
	h.forwarder(cfg, "r1")
	h.st.Sim.Sim.SetFaults(failing(503))
	ids := h.publishMany("acme", "S", 10)
	// The circuit opens after a few failures; then the orders wait.
	testkit.WaitFor(t, wait, "every order waiting, Hiper tried", func() bool {
		for _, id := range ids {
			if _, _, err := h.state.Get(context.Background(), "acme", id); err != nil {
				return false
			}
		}
		return h.posted() >= DefaultCircuitThreshold
	})
	h.st.Sim.Sim.SetFaults(hipersim.Faults{})
	h.exactlyOnce("acme", ids)
	if h.seen.count(events.KindOrderNeedsReview) != 0 {
		t.Error("a 503 put an order under review")
	}
}

// TestRateLimited: Hiper's 429s slow the orders down, none is lost or
// doubled. Hiper first refuses every create with 429 until it has refused
// one of each order's first attempts at least, so the limit bites whatever
// the machine's speed (a token bucket alone never bites a forwarder slower
// than its rate); then it keeps a real token bucket of 10 a second.
func TestRateLimited(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	cfg := testConfig()
	cfg.MaxAttempts = 1000 // the refusals must not fail the orders: only slow them
	h.forwarder(cfg, "r1")
	h.st.Sim.Sim.SetFaults(failing(http.StatusTooManyRequests))
	ids := h.publishMany("acme", "L", 15)
	testkit.WaitFor(t, wait, "Hiper refusing creates with 429", func() bool { return h.posted() >= 5 })
	if n := h.seen.count(events.KindOrderAccepted); n != 0 {
		t.Fatalf("%d orders accepted while Hiper refused every create", n)
	}
	h.st.Sim.Sim.SetFaults(hipersim.Faults{RateLimitPerSecond: 10, Endpoints: []string{hipersim.EndpointCreateOrder}})
	h.exactlyOnce("acme", ids)
	if n := h.seen.count(events.KindOrderNeedsReview) + h.seen.count(events.KindOrderFailed); n != 0 {
		t.Errorf("%d orders under review or failed: a 429 is a refusal before Hiper acted, to be retried", n)
	}
}

// TestLostAnswer: Hiper creates the order but the answer is lost (a 500):
// the order needs review, is never posted again, and an operator resolves
// it with the id found in Hiper.
func TestLostAnswer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	h.st.Sim.Sim.SetFaults(losing(500))
	o := h.order("acme", "4001", 1)
	h.approve("acme", o, "store-4001")
	nr := h.waitEvent(events.KindOrderNeedsReview, "4001", wait).(*eventsv1.OrderNeedsReview)
	if !strings.Contains(nr.GetReason(), "não é possível saber") {
		t.Errorf("reason %q", nr.GetReason())
	}
	h.waitState("acme", "4001", orders.StateNeedsReview, wait)
	h.st.Sim.Sim.SetFaults(hipersim.Faults{})
	h.approve("acme", o, "store-4001-again")
	testkit.WaitFor(t, wait, "the duplicate handled", func() bool { return h.pending() == 0 })
	inHiper := h.simOrders("acme", "4001")
	if len(inHiper) != 1 || h.posted() != 1 {
		t.Fatalf("%d in Hiper after %d create calls; want 1 and 1", len(inHiper), h.posted())
	}

	op := h.operator()
	if _, err := op.Resolve(context.Background(), "acme", "4001", inHiper[0].ID); err != nil {
		t.Fatal(err)
	}
	acc := h.waitEvent(events.KindOrderAccepted, "4001", wait).(*eventsv1.OrderAccepted)
	if acc.GetHiperOrderId() != inHiper[0].ID {
		t.Errorf("accepted with %q, want %q", acc.GetHiperOrderId(), inHiper[0].ID)
	}
	if _, err := op.Resolve(context.Background(), "acme", "4001", inHiper[0].ID); err == nil {
		t.Error("resolved an accepted order again")
	}
}

// TestUnknownOutcomeThenResend: a proxy's 500 page before Hiper acted looks
// the same as a lost answer; the operator, finding nothing in Hiper, resends
// it.
func TestUnknownOutcomeThenResend(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	h.underReview("4101", failingAsProxy(500))
	if len(h.simOrders("acme", "4101")) != 0 || h.posted() != 1 {
		t.Fatalf("posted %d", h.posted())
	}
	rec, err := h.operator().Resend(context.Background(), "acme", "4101")
	if err != nil || rec.Generation != 1 {
		t.Fatalf("Resend: %+v %v", rec, err)
	}
	h.exactlyOnce("acme", []string{"4101"})
}

// TestRetriesRunOut: an order Hiper keeps refusing to take (503) fails
// after its attempts with order.failed and a dead letter; retried from the
// dead letters once Hiper is back, it goes through.
func TestRetriesRunOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	cfg := testConfig()
	cfg.MaxAttempts = 3
	cfg.CircuitThreshold = 1000 // this order's own failure, not an outage
	h.forwarder(cfg, "r1")
	h.st.Sim.Sim.SetFaults(failing(503))
	h.approve("acme", h.order("acme", "5001", 1), "store-5001")
	failed := h.waitEvent(events.KindOrderFailed, "5001", wait).(*eventsv1.OrderFailed)
	if failed.GetHiperOrderId() != "" || !strings.Contains(failed.GetMessage(), "3 tentativas") || failed.GetCode() != events.ReasonRetriesExhausted {
		t.Errorf("order.failed %v", failed)
	}
	rec := h.waitState("acme", "5001", orders.StateFailed, wait)
	if rec.Attempts != 3 || h.posted() != 3 {
		t.Errorf("attempts %d, create calls %d; want 3 and 3", rec.Attempts, h.posted())
	}
	var dl []events.DeadLetterEntry
	testkit.WaitFor(t, wait, "the dead letter", func() bool { dl = h.deadLetters(); return len(dl) == 1 })
	if dl[0].Letter.GetReasonCode() != events.ReasonRetriesExhausted {
		t.Errorf("dead letter %v", dl[0].Letter)
	}

	h.st.Sim.Sim.SetFaults(hipersim.Faults{})
	if err := events.RetryDeadLetter(context.Background(), h.st.JS, h.st.NS, dl[0].Seq); err != nil {
		t.Fatal(err)
	}
	h.exactlyOnce("acme", []string{"5001"})
}

// TestPausedTenant: a paused tenant's orders wait, without using up their
// attempts, and flow once it is resumed; meanwhile another tenant's orders
// go through, though the paused backlog is larger than the replica's
// handlers.
func TestPausedTenant(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{tenants: []string{"acme", "beta"}})
	cfg := testConfig()
	cfg.MaxAttempts = 2
	cfg.Concurrency = 8
	f := h.forwarder(cfg, "r1")
	ctx := context.Background()
	h.pause(f, "acme")
	ids := h.publishMany("acme", "P", 3*cfg.Concurrency)
	others := h.publishMany("beta", "Q", 10)
	h.exactlyOnce("beta", others)
	// Several paused retries go by (100ms each): none may count.
	testkit.WaitFor(t, wait, "retries while paused", func() bool {
		return outcomes(f, events.KindOrderApproved, outWaiting) >= 3*len(ids)
	})
	for _, id := range ids {
		if rec := h.record("acme", id); rec.State != orders.StateReceived || rec.Attempts != 0 {
			t.Fatalf("while paused: %+v", rec)
		}
	}
	for _, o := range h.st.Sim.Sim.Orders(h.st.Keys["acme"]) {
		t.Fatalf("posted while paused: %s", o.Body.StoreOrderID)
	}
	if _, err := h.st.Broker.Tenants.ResumeTenant(ctx, &brokerv1.ResumeTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	h.exactlyOnce("acme", ids)
}

// TestReplicaDiedMidSend stands in for a crash between recording sending
// and recording Hiper's answer: another replica finds the record and,
// once the dead one's lease is over, puts the order under review without
// posting it.
func TestReplicaDiedMidSend(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	ctx := context.Background()
	for _, tc := range []struct {
		id    string
		lease time.Duration
	}{{"6001", -time.Second}, {"6002", 1500 * time.Millisecond}} {
		o := h.order("acme", tc.id, 1)
		now := time.Now()
		rec := &orders.Record{Tenant: "acme", OrderID: tc.id, State: orders.StateSending, Owner: "ghost",
			LeaseUntil: now.Add(tc.lease), Attempts: 1, CreatedAt: now}
		if err := rec.SetApproval(o); err != nil {
			t.Fatal(err)
		}
		if _, err := h.state.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		h.approve("acme", o, "store-"+tc.id)
	}
	h.waitState("acme", "6001", orders.StateNeedsReview, wait)
	if nr := h.waitEvent(events.KindOrderNeedsReview, "6001", wait).(*eventsv1.OrderNeedsReview); nr.GetCode() != ReviewSendInterrupted {
		t.Errorf("order.needs_review code %q, want %q", nr.GetCode(), ReviewSendInterrupted)
	}
	if rec := h.record("acme", "6002"); rec.State != orders.StateSending {
		t.Fatalf("a live lease was taken over: %s", rec.State)
	}
	rec := h.waitState("acme", "6002", orders.StateNeedsReview, wait)
	if !strings.Contains(rec.Reason, "ghost") {
		t.Errorf("reason %q does not name the replica", rec.Reason)
	}
	if h.posted() != 0 {
		t.Fatalf("%d create calls; an order of unknown outcome was posted", h.posted())
	}
}

func (h *harness) operator() orders.Operator {
	return orders.Operator{Store: h.state, Publisher: events.NewPublisher(h.st.JS, h.st.NS, "test-operator", events.FormatProtobuf),
		NS: h.st.NS, By: "test"}
}

// failing answers every create with status, before Hiper acts.
func failing(status int) hipersim.Faults {
	return hipersim.Faults{ErrorRate: 1, ErrorStatus: status, Endpoints: []string{hipersim.EndpointCreateOrder}}
}

// failingAsProxy answers every create with a proxy's page of status, before
// Hiper acts: nothing proves Hiper did not store the order.
func failingAsProxy(status int) hipersim.Faults {
	f := failing(status)
	f.Answer = hipersim.AnswerProxy
	return f
}

// losing creates every order but answers status with a proxy's page, as if
// the answer was lost.
func losing(status int) hipersim.Faults {
	return hipersim.Faults{FailAfterCommitRate: 1, ErrorStatus: status, Endpoints: []string{hipersim.EndpointCreateOrder}}
}

// underReview sends an order of acme through faults until it needs review,
// then heals Hiper.
func (h *harness) underReview(id string, faults hipersim.Faults) {
	h.t.Helper()
	h.st.Sim.Sim.SetFaults(faults)
	h.approve("acme", h.order("acme", id, 1), "store-"+id)
	h.waitState("acme", id, orders.StateNeedsReview, wait)
	h.st.Sim.Sim.SetFaults(hipersim.Faults{})
}

// TestShutdownFinishesSends stops a replica while Hiper is slow to answer
// a create: the drain's grace period is shorter than the call, yet Run
// returns only once Hiper's answer is recorded, so a restart finds the
// order accepted rather than under review.
func TestShutdownFinishesSends(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	cfg := testConfig()
	cfg.GracePeriod = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := Start(ctx, Deps{Deps: service.Deps{NATS: h.st.NATS, Namespace: h.st.NS, Tokens: h.st.Broker, HiperBaseURL: h.st.Sim.URL,
		Health: telemetry.NewHealth(), Log: testLogger()}, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	h.st.Sim.Sim.SetFaults(hipersim.Faults{LatencyMs: 1000, Endpoints: []string{hipersim.EndpointCreateOrder}})
	h.approve("acme", h.order("acme", "9001", 1), "store-9001")
	h.waitState("acme", "9001", orders.StateSending, wait)
	cancel()
	if err := testkit.Recv(t, done, time.Minute, "Run to return"); err != nil {
		t.Fatal(err)
	}
	if rec := h.record("acme", "9001"); rec.State != orders.StateAccepted {
		t.Fatalf("after Run returned the order is %s", rec.State)
	}
}

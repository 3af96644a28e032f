package forwarder

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// TestDecisionTable runs every row of the create's decision table
// (docs/order-forwarder.md) against hiper-sim: an answer that proves Hiper
// did not store the order is tried again and the order reaches Hiper once;
// any other answer puts it under review, and it is never posted twice.
func TestDecisionTable(t *testing.T) {
	t.Parallel()
	create := []string{hipersim.EndpointCreateOrder}
	before := func(status int, answer string) hipersim.Faults {
		return hipersim.Faults{ErrorRate: 1, ErrorStatus: status, Answer: answer, Endpoints: create}
	}
	after := func(status int, answer string) hipersim.Faults {
		return hipersim.Faults{FailAfterCommitRate: 1, ErrorStatus: status, Answer: answer, Endpoints: create}
	}
	const (
		retried  = "retried"  // not stored: tried again, in Hiper once after it heals
		review   = "review"   // unknown: needs_review, posted once
		rejected = "rejected" // Hiper's own refusal: rejected, not in Hiper
	)
	tests := []struct {
		name   string
		faults hipersim.Faults
		want   string
		stored int // orders Hiper holds when the fault is on
		answer string
	}{
		{"429", before(http.StatusTooManyRequests, ""), retried, 0, ""},
		{"503 with Hiper's envelope", before(http.StatusServiceUnavailable, hipersim.AnswerHiper), retried, 0, ""},
		{"500 with Hiper's envelope", before(http.StatusInternalServerError, hipersim.AnswerHiper), retried, 0, ""},
		{"400 with Hiper's envelope", before(http.StatusBadRequest, hipersim.AnswerHiper), rejected, 0, ""},
		{"stored, then a proxy's 502 page", after(http.StatusBadGateway, hipersim.AnswerProxy), review, 1, "HTTP 502"},
		{"stored, then a proxy's 503 page", after(http.StatusServiceUnavailable, hipersim.AnswerProxy), review, 1, "HTTP 503"},
		{"stored, then a proxy's 504 page", after(http.StatusGatewayTimeout, hipersim.AnswerProxy), review, 1, "504 Gateway Timeout"},
		{"stored, then a 503 with no body", after(http.StatusServiceUnavailable, hipersim.AnswerEmpty), review, 1, "HTTP 503"},
		{"stored, then the connection reset", after(0, hipersim.AnswerReset), review, 1, "conexão interrompida"},
		{"a proxy's 503 page before Hiper acted", before(http.StatusServiceUnavailable, hipersim.AnswerProxy), review, 0, "HTTP 503"},
		{"reset after the request was written", before(0, hipersim.AnswerReset), review, 0, "conexão interrompida"},
		{"a proxy's 413 page", before(http.StatusRequestEntityTooLarge, hipersim.AnswerProxy), review, 0, "HTTP 413"},
		{"timeout after the request was written", hipersim.Faults{LatencyMs: 3000, Endpoints: create}, review, 0, "prazo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOptions{})
			cfg := testConfig()
			cfg.MaxAttempts = 1000
			cfg.HiperTimeout = time.Second
			h.forwarder(cfg, "r1")
			h.st.Sim.Sim.SetFaults(tt.faults)
			h.approve("acme", h.order("acme", "D1", 1), "store-D1")
			switch tt.want {
			case retried:
				testkit.WaitFor(t, wait, "a second try", func() bool { return h.posted() >= 2 })
				if rec := h.record("acme", "D1"); rec.State != orders.StateReceived && rec.State != orders.StateSending {
					t.Fatalf("while failing the order is %s", rec.State)
				}
				h.st.Sim.Sim.SetFaults(hipersim.Faults{})
				h.exactlyOnce("acme", []string{"D1"})
			case rejected:
				rej := h.waitEvent(events.KindOrderRejected, "D1", wait).(*eventsv1.OrderRejected)
				if len(rej.GetReasons()) == 0 || rej.GetReasons()[0].GetCode() != CodeHiperRejected {
					t.Errorf("rejected %v", rej)
				}
				for _, r := range rej.GetReasons() {
					namesNoCustomer(t, r.GetMessage())
				}
				namesNoCustomer(t, h.logs.String())
			case review:
				nr := h.waitEvent(events.KindOrderNeedsReview, "D1", wait).(*eventsv1.OrderNeedsReview)
				rec := h.waitState("acme", "D1", orders.StateNeedsReview, wait)
				for _, s := range []string{tt.answer, "tentativa 1", rec.SentAt.Format(time.RFC3339), "1 item(ns)", "pagamentos BRL",
					"orders show acme D1", "orders resolve acme D1 --hiper-id", "orders resolve acme D1 --resend"} {
					if !strings.Contains(nr.GetReason(), s) {
						t.Errorf("order.needs_review %q does not say %q", nr.GetReason(), s)
					}
				}
				namesNoCustomer(t, nr.GetReason(), rec.Reason, rec.Answer, rec.LastError, h.logs.String())
				if nr.GetCode() != ReviewOutcomeUnknown {
					t.Errorf("order.needs_review code %q, want %q", nr.GetCode(), ReviewOutcomeUnknown)
				}
				if !strings.Contains(rec.Answer, tt.answer) {
					t.Errorf("record's answer %q, want %q", rec.Answer, tt.answer)
				}
				// A duplicate delivery, Hiper healed: still never posted again.
				h.st.Sim.Sim.SetFaults(hipersim.Faults{})
				h.approve("acme", h.order("acme", "D1", 1), "store-D1-again")
				testkit.WaitFor(t, wait, "the duplicate handled", func() bool { return h.pending() == 0 })
				if h.posted() != 1 {
					t.Errorf("%d create calls; an order of unknown outcome was posted again", h.posted())
				}
			}
			if tt.want != retried {
				if got := len(h.simOrders("acme", "D1")); got != tt.stored {
					t.Errorf("Hiper holds the order %d times, want %d", got, tt.stored)
				}
			}
		})
	}
}

// TestConnectionRefused: Hiper cannot be reached at all; the order was never
// written anywhere, so it waits to be tried again, never under review.
func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.hiperURL = "http://" + testkit.FreeAddr(t) + "/api/v1" // nothing listens there
	cfg := testConfig()
	cfg.MaxAttempts = 1000
	h.forwarder(cfg, "r1")
	h.approve("acme", h.order("acme", "R1", 1), "store-R1")
	testkit.WaitFor(t, wait, "the refused connection recorded", func() bool {
		rec, _, err := h.state.Get(t.Context(), "acme", "R1")
		return err == nil && strings.Contains(rec.LastError, "refused")
	})
	if rec := h.record("acme", "R1"); rec.State != orders.StateReceived {
		t.Errorf("order %s after a refused connection, want received", rec.State)
	}
	if n := h.seen.count(events.KindOrderNeedsReview); n != 0 {
		t.Errorf("%d orders under review", n)
	}
}

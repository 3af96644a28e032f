package watcher_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
)

// JetStream may hand one poll task to two replicas at once: a redelivery
// after AckWait to another replica while the first, silent, still polls,
// or a replica starting (TestRestartMidWay). The in-poll guard of take
// holds within one replica only: across replicas both poll. What the
// first published and recorded, the second does not publish again — not
// even for the stream's duplicate window to drop. Replica a polls an order
// and stops answering (its heartbeats come every 20 s); replica b starts
// with an AckWait of a second, which the shared consumer takes, so the
// server hands the task to b while a still polls. b publishes the invoice
// and the shipping and ends the order; then a gets its answer from Hiper
// and publishes nothing.
func TestOneTaskOnTwoReplicas(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	release := make(chan struct{})
	var released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	t.Cleanup(free)
	cfgA := fast()
	cfgA.AckWait = time.Minute
	cfgA.HiperTimeout = 2 * waitLong // the held call outlasts every wait
	a := h.startWith("a", cfgA, holdFirst(http.DefaultTransport, release))
	id := h.newOrder("9600")
	h.event(id, invoiceEvent("13"))
	h.event(id, shippedEvent("BR444444444BR"))
	testkit.WaitFor(t, waitLong, "replica a polling the order", func() bool { return h.calls.polls("a") == 1 })
	cfgB := fast()
	cfgB.AckWait = time.Second
	b := h.start("b", cfgB)
	h.waitFinal("9600")
	if h.calls.polls("b") == 0 {
		t.Fatal("the order ended without b polling it")
	}
	free()
	testkit.WaitFor(t, waitLong, "a's poll to end", func() bool {
		return a.counter("hipersync_invoice_watch_polls_total") == 1
	})
	h.exactlyOnce("9600", events.KindInvoiceIssued, events.KindOrderShipped)
	if n := b.outcomes("hipersync_invoice_watch_events_total"); n != 2 {
		t.Errorf("b published %v events, want 2", n)
	}
	if n, dup := a.counter("hipersync_invoice_watch_events_total"), a.counter("hipersync_invoice_watch_duplicates_total"); n+dup != 0 {
		t.Errorf("a published %v events b published already (%v dropped by the duplicate window)", n+dup, dup)
	}
}

// Two polls of one order may also record out of order: replica a asks
// Hiper first and gets its answer (no event yet) late; meanwhile Hiper
// registers the invoice and replica b, handed the task after its AckWait,
// polls, publishes the invoice and records the answer with its event. a's
// record write, last, must not put its older answer back on top (the
// order's event count going back to 0, the next poll then seeing a
// "change"): the record never goes back.
func TestOlderAnswerRecordedLast(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const storeID = "9700"
	answered, release := make(chan struct{}), make(chan struct{})
	var released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	t.Cleanup(free)
	cfgA := fast()
	cfgA.AckWait = time.Minute
	cfgA.HiperTimeout = 2 * waitLong
	a := h.startWith("a", cfgA, holdFirstAnswer(http.DefaultTransport, answered, release))
	seen := h.watchRecord(storeID)
	id := h.newOrder(storeID)
	testkit.Recv(t, answered, waitLong, "replica a's first answer from Hiper")
	h.event(id, invoiceEvent("14"))
	cfgB := fast()
	cfgB.AckWait = time.Second
	b := h.start("b", cfgB)
	testkit.WaitFor(t, waitLong, "b to record the invoice", func() bool {
		return h.recordOf(storeID).IsPublished(events.KindInvoiceIssued)
	})
	want := h.recordOf(storeID).Events
	b.stop()
	free()
	a.stop() // its poll in progress ends first (the drain's grace period)
	if n := a.counter("hipersync_invoice_watch_polls_total"); n != 1 {
		t.Fatalf("a polled %v times, want its one held poll", n)
	}
	counts := seen()
	for i := 1; i < len(counts); i++ {
		if counts[i] < counts[i-1] {
			t.Fatalf("the record's event count went back: %v", counts)
		}
	}
	if r := h.recordOf(storeID); r.Events != want {
		t.Errorf("record holds %d events, want Hiper's %d (written: %v)", r.Events, want, counts)
	}
}

// holdFirstAnswer passes Hiper's calls to base, but holds the answer to
// the first poll of an order, once Hiper has given it (answered is closed
// then), until release is closed: Hiper may change the order meanwhile.
func holdFirstAnswer(base http.RoundTripper, answered chan<- struct{}, release <-chan struct{}) http.RoundTripper {
	var first sync.Once
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		hold := false
		if strings.Contains(r.URL.Path, "/pedido-de-venda/eventos/") {
			first.Do(func() { hold = true })
		}
		resp, err := base.RoundTrip(r)
		if !hold || err != nil {
			return resp, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		close(answered)
		select {
		case <-release:
			return resp, nil
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	})
}

// watchRecord follows the order's record from now on; the function it
// returns gives the event count of each revision written so far, once it
// has seen the revision the bucket holds.
func (h *harness) watchRecord(orderID string) func() []int {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	kv, err := h.st.JS.KeyValue(ctx, h.st.NS.Bucket(watcher.Bucket))
	if err != nil {
		h.t.Fatal(err)
	}
	key, _ := order.Key(tenantID, orderID)
	w, err := kv.Watch(ctx, key)
	if err != nil {
		h.t.Fatal(err)
	}
	var mu sync.Mutex
	var counts []int
	var last uint64
	go func() {
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			r, err := order.Decode(e.Value())
			mu.Lock()
			if err == nil {
				counts = append(counts, r.Events)
			}
			last = e.Revision()
			mu.Unlock()
		}
	}()
	return func() []int {
		h.t.Helper()
		e, err := kv.Get(ctx, key)
		if err != nil {
			h.t.Fatal(err)
		}
		testkit.WaitFor(h.t, waitLong, "the record's watch to catch up", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return last >= e.Revision()
		})
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(counts)
	}
}

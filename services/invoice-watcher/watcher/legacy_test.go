package watcher_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
)

// Records and poll tasks the previous version stored under its own order
// key (a digest for an id not made of letters, digits, '-' and '_', or
// longer than 64) are found and moved to the one key: those there when a
// replica starts, and those an older replica writes while it runs. Each
// order is followed to the end, its events published once.
func TestLegacyOrderKeysMoved(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// A first replica provisions the bucket and the poll queue.
	a := h.start("a", fast())
	h.waitConsumers()
	a.stop()

	atStart := "PED/7.1"
	h.legacyOrder(atStart)
	h.start("b", fast())
	if h.legacyRecord(atStart) {
		t.Errorf("order %s: a record under the legacy key after start", atStart)
	}
	if r := h.recordOf(atStart); r.HiperOrderID == "" {
		t.Errorf("order %s: no record under its key after start: %+v", atStart, r)
	}

	whileRunning := "PED-" + strings.Repeat("9", 80)
	h.legacyOrder(whileRunning)
	for _, id := range []string{atStart, whileRunning} {
		h.waitFinal(id)
		h.exactlyOnce(id, events.KindInvoiceIssued, events.KindOrderShipped)
		if h.legacyRecord(id) || h.legacyTask(id) {
			t.Errorf("order %s: left under its legacy key", id)
		}
	}
}

// legacyToken is the order key's last token as the previous version
// wrote it.
func legacyToken(orderID string) string {
	sum := sha256.Sum256([]byte(orderID))
	return "=" + hex.EncodeToString(sum[:20])
}

// legacyOrder creates an order in Hiper, invoiced and shipped already, and
// stores its record and poll task as the previous version did.
func (h *harness) legacyOrder(storeID string) {
	h.t.Helper()
	ctx := context.Background()
	id := h.createOrder(storeID)
	h.event(id, invoiceEvent("321"))
	h.event(id, shippedEvent("BR987654321BR"))
	at := time.Now().Add(-time.Minute).UTC()
	rec := &order.Record{Tenant: tenantID, OrderID: storeID, HiperOrderID: id, AcceptedAt: at, ChangedAt: at, WrittenAt: at}
	b, err := rec.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.records().Put(ctx, tenantID+"."+legacyToken(storeID), b); err != nil {
		h.t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"tenant": tenantID, "orderId": storeID})
	if _, err := h.st.JS.Publish(ctx, h.legacyTaskSubject(storeID), body); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) records() jetstream.KeyValue {
	h.t.Helper()
	kv, err := h.st.JS.KeyValue(context.Background(), h.st.NS.Bucket(watcher.Bucket))
	if err != nil {
		h.t.Fatal(err)
	}
	return kv
}

func (h *harness) legacyTaskSubject(storeID string) string {
	return h.st.NS.ServiceSubject("invoicewatch", tenantID, legacyToken(storeID))
}

// legacyRecord reports whether a record is stored under the order's legacy
// key.
func (h *harness) legacyRecord(storeID string) bool {
	h.t.Helper()
	_, err := h.records().Get(context.Background(), tenantID+"."+legacyToken(storeID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return true
}

// legacyTask reports whether a poll task is queued under the order's
// legacy key.
func (h *harness) legacyTask(storeID string) bool {
	h.t.Helper()
	s, err := h.st.JS.Stream(context.Background(), h.st.NS.Stream(watcher.TaskStream))
	if err != nil {
		h.t.Fatal(err)
	}
	_, err = s.GetLastMsgForSubject(context.Background(), h.legacyTaskSubject(storeID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return true
}

// waitConsumers waits until a replica has created every durable consumer
// it reads.
func (h *harness) waitConsumers() {
	h.t.Helper()
	testkit.WaitFor(h.t, waitLong, "the watcher's consumers", func() bool {
		for _, c := range []struct{ stream, name string }{
			{h.st.NS.Stream(watcher.TaskStream), watcher.PollConsumer},
			{h.st.NS.Stream(events.StreamHiper), watcher.ConsumerName + "-accepted"},
			{h.st.NS.Stream(events.StreamHiper), watcher.ConsumerName + "-cancels"},
			{h.st.NS.Stream(events.StreamStore), watcher.ConsumerName + "-store-cancels"},
		} {
			if _, err := h.st.JS.Consumer(context.Background(), c.stream, c.name); err != nil {
				return false
			}
		}
		return true
	})
}

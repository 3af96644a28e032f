package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// `orders show` gives Hiper's order number and what Hiper did, as the
// invoice-watcher recorded them (TestOrderProcessingThroughHiperSim shows
// the watcher reading them from hiper-sim).
func TestOrdersShowHiperCode(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{})
	ctx := context.Background()
	env := st.Env()
	store, err := orders.Open(ctx, st.JS, st.NS)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := store.Create(ctx, &orders.Record{Tenant: "acme", OrderID: "1101", State: orders.StateAccepted,
		HiperOrderID: "34852cf6-f222-4d61-86d1-045a1aee66f4", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	kv, err := events.EnsureKV(ctx, st.JS, st.NS, watcher.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	rec := &order.Record{Tenant: "acme", OrderID: "1101", HiperOrderID: "34852cf6-f222-4d61-86d1-045a1aee66f4", HiperCode: "LV00000000002"}
	rec.MarkPublished(events.Kind("order.processing.processed"), now)
	b, _ := json.Marshal(rec)
	key, _ := order.Key("acme", "1101")
	if _, err := kv.Put(ctx, key, b); err != nil {
		t.Fatal(err)
	}
	r := runEnv(t, env, "orders", "show", "acme", "1101")
	if r.code != 0 || !strings.Contains(r.stdout, "LV00000000002") || !strings.Contains(r.stdout, "order.processing.processed") {
		t.Fatalf("orders show: %+v", r)
	}
	r = runEnv(t, env, "orders", "show", "acme", "1101", "--json")
	var v struct {
		HiperCode string `json:"hiperCode"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.HiperCode != "LV00000000002" {
		t.Fatalf("orders show --json: %+v", r)
	}
}

package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/schedule/scheduletest"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/services/catalog-poller/catalogsync"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// `catalog unlink` by barcode and `catalog reset`, against the real
// catalog-poller and hiper-sim.
func TestCatalogUnlinkAndReset(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{})
	var products []hiper.Product
	for i := range 25 {
		products = append(products, hiper.Product{
			ID: fmt.Sprintf("6c1e0000-0000-4000-8000-%012d", i), Name: fmt.Sprint("Produto ", i), Category: "Diversos",
			Barcode: fmt.Sprintf("2%011d", i), Price: hiper.MustDecimal("10"), Active: true,
		})
	}
	if err := st.Sim.Sim.UpsertProducts(st.Keys["acme"], products); err != nil {
		t.Fatal(err)
	}
	collected := scheduletest.Collect(t, st.JS, st.NS)
	start := time.Now()
	scheduletest.StartReplica(t, scheduletest.Env{NATS: st.NATS, Namespace: st.NS, Broker: st.Broker, HiperURL: st.Sim.URL}, catalogsync.Start, scheduletest.Fast())
	scheduletest.WaitSynced(t, st.JS, st.NS, "acme", syncstatus.Catalog, start)
	env := st.Env()
	created := func(id string) int {
		collected.CaughtUp(t)
		n := 0
		for _, e := range collected.Events("acme", events.KindCatalogProductUpserted) {
			if u := e.Msg.(*eventsv1.CatalogProductUpserted); u.GetProductId() == id && u.GetCreated() {
				n++
			}
		}
		return n
	}

	if r := runEnv(t, env, "catalog", "unlink", "acme", products[2].Barcode); r.code != 0 || !strings.Contains(r.stdout, "ok") {
		t.Fatalf("unlink by barcode: %+v", r)
	}
	if n := created(products[2].ID); n != 2 {
		t.Fatalf("the unlinked product was created %d times, want 2", n)
	}
	if r := runEnv(t, env, "catalog", "reset", "acme"); r.code != 0 || !strings.Contains(r.stdout, "held") {
		t.Fatalf("reset of 25 products: %+v", r)
	}
	if n := created(products[0].ID); n != 1 {
		t.Fatalf("a held reset published: %d creations", n)
	}
	if r := runEnv(t, env, "sync", "acme", "--catalog", "--approve"); r.code != 0 {
		t.Fatalf("approve the reset: %+v", r)
	}
	for _, p := range products {
		if n := created(p.ID); n < 2 {
			t.Fatalf("%s created %d times after the approved reset", p.ID, n)
		}
	}
	if r := runEnv(t, env, "catalog", "unlink", "acme"); r.code != 2 {
		t.Fatalf("unlink without a product: %+v", r)
	}
}

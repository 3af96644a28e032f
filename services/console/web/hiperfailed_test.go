package web_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// TestOrderHiperFailedIsResent: an order Hiper accepted and then processed
// with an error shows Hiper's text and one way out, sending it again (no
// Hiper id to give: Hiper holds it, failed); the button resends it. What
// was sent is shown with its customer masked.
func TestOrderHiperFailedIsResent(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme"}})
	c := consoletest.Start(t, st, auth.Config{})
	ctx := context.Background()
	const hid = "9a1c3b7e-2f4d-4e8a-b6c1-0d2e3f4a5b6c"
	c.PutOrder(t, &orders.Record{Tenant: "acme", OrderID: "1005", State: orders.StateAccepted, HiperOrderID: hid,
		HiperFailure: &orders.HiperFailure{HiperOrderID: hid, At: time.Now(), Message: "Produto sem estoque na filial"}},
		&eventsv1.StoreOrderApproved{OrderId: "1005", ShippingAddress: &eventsv1.Address{Street: "Rua Augusta"},
			Customer: &eventsv1.Customer{Name: "Ana Souza", Document: "52998224725", Email: "ana.souza@example.com"}})
	store, err := orders.Open(ctx, st.JS, st.NS)
	if err != nil {
		t.Fatal(err)
	}

	b := login(t, c, c.OperatorKey)
	code, page := b.get("/stores/acme/orders/1005")
	for _, want := range []string{"O Hiper processou este pedido com erro", "Produto sem estoque na filial", `id="resend"`} {
		if code != 200 || !strings.Contains(page, want) {
			t.Fatalf("the page of an order Hiper failed lacks %q (%d)", want, code)
		}
	}
	if strings.Contains(page, `id="resolve"`) {
		t.Fatal("the page offers to resolve an order Hiper holds")
	}
	// What was sent names no customer, as the log.
	for _, p := range []string{"52998224725", "Ana", "Souza", "ana.souza@example.com", "Rua Augusta"} {
		if strings.Contains(page, p) {
			t.Fatalf("the order page shows the customer's %q", p)
		}
	}
	if !strings.Contains(page, "a***@e***.com") || !strings.Contains(page, "*********25") {
		t.Fatal("the order page does not show what was sent, masked")
	}
	resp, err := b.c.PostForm(b.base+"/stores/acme/orders/1005/resolve", url.Values{"csrf": {csrf(t, page)}, "resend": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got, _, err := store.Get(ctx, "acme", "1005")
	if err != nil || got.State != orders.StateReceived || got.HiperOrderID != "" || got.Generation != 1 {
		t.Fatalf("after the resend button: %+v, %v", got, err)
	}
}

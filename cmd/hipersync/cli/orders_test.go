package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

func TestOrdersCommands(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{})
	ctx := context.Background()
	env := map[string]string{"HIPERSYNC_NAMESPACE": st.NS.Prefix, "NATS_URL": brokertest.EnvOr("NATS_URL", nats.DefaultURL)}
	cli := func(args ...string) result {
		t.Helper()
		return runEnv(t, env, args...)
	}

	if r := cli("orders", "list", "acme"); r.code != 1 || !strings.Contains(r.stderr, "has order-forwarder run") {
		t.Fatalf("list before any order-forwarder: %+v", r)
	}
	store, err := orders.Open(ctx, st.JS, st.NS)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, r := range []*orders.Record{
		{OrderID: "1001", State: orders.StateAccepted, HiperOrderID: "34852cf6-f222-4d61-86d1-045a1aee66f4"},
		{OrderID: "1002", State: orders.StateNeedsReview, Reason: "O Hiper não confirmou o pedido", Attempts: 1, SentAt: now, Answer: "HTTP 503 — proxy page"},
		{OrderID: "10.03", State: orders.StateNeedsReview, Reason: "O envio ao Hiper foi interrompido"},
		{OrderID: "1004", State: orders.StateRejected, Reasons: []orders.Reason{{Code: "invalid_document", Field: "customer.document", Message: "CPF/CNPJ do cliente inválido."}}},
	} {
		r.Tenant, r.CreatedAt, r.UpdatedAt = "acme", now, now
		if err := r.SetApproval(&eventsv1.StoreOrderApproved{OrderId: r.OrderID, Customer: &eventsv1.Customer{Name: "Ana Souza", Document: "52998224725"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}

	r := cli("orders", "list", "acme")
	for _, want := range []string{"1001", "accepted", "34852cf6", "10.03", "needs_review", "invalid_document"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("list lacks %q: %+v", want, r)
		}
	}
	r = cli("orders", "list", "acme", "--state", "needs_review", "--json")
	var listed []struct {
		OrderID  string          `json:"orderId"`
		State    string          `json:"state"`
		Approval json.RawMessage `json:"approval"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &listed) != nil || len(listed) != 2 || listed[1].OrderID != "10.03" ||
		!strings.Contains(string(listed[0].Approval), `"1002"`) {
		t.Fatalf("list --state needs_review --json: %+v %+v", r, listed)
	}
	r = cli("orders", "show", "acme", "1004")
	if r.code != 0 || !strings.Contains(r.stdout, "customer.document") || !strings.Contains(r.stdout, "Ana Souza") {
		t.Fatalf("show: %+v", r)
	}
	// The customer's CPF is personal data: masked, unless asked for.
	for _, args := range [][]string{{"orders", "show", "acme", "1004"}, {"orders", "show", "acme", "1004", "--json"},
		{"orders", "list", "acme", "--json"}} {
		if r := cli(args...); r.code != 0 || strings.Contains(r.stdout, "52998224725") || !strings.Contains(r.stdout, "*********25") {
			t.Fatalf("%v prints the full CPF or no masked one: %+v", args, r)
		}
	}
	for _, args := range [][]string{{"orders", "show", "acme", "1004", "--reveal"}, {"orders", "show", "acme", "1004", "--json", "--reveal"}} {
		if r := cli(args...); r.code != 0 || !strings.Contains(r.stdout, "52998224725") {
			t.Fatalf("%v does not reveal the CPF: %+v", args, r)
		}
	}
	// Under review: what was sent and when, what came back, the two ways out.
	r = cli("orders", "show", "acme", "1002")
	for _, want := range []string{"sent to Hiper", "(attempt 1): cliente Ana Souza", "Hiper answered", "HTTP 503 — proxy page",
		"orders resolve acme 1002 --hiper-id", "orders resolve acme 1002 --resend"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("show an order under review: no %q in %+v", want, r)
		}
	}
	if strings.Contains(r.stdout, "52998224725") {
		t.Fatalf("show an order under review prints the CPF: %s", r.stdout)
	}
	r = cli("orders", "show", "acme", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, `order "nope" of acme not found`) {
		t.Fatalf("show a missing order: %+v", r)
	}

	// Resolve one under review with its Hiper id: accepted, and the event out.
	const hid = "0b7b5f39-2a1e-4f9b-9a55-7e3c2d1a0f42"
	r = cli("orders", "resolve", "acme", "1002", "--hiper-id", hid, "--json")
	var resolved struct {
		State        string `json:"state"`
		HiperOrderID string `json:"hiperOrderId"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &resolved) != nil || resolved.State != "accepted" || resolved.HiperOrderID != hid {
		t.Fatalf("resolve --hiper-id: %+v", r)
	}
	stream, err := st.JS.Stream(ctx, st.NS.Stream(events.StreamHiper))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, st.NS.HiperSubject("acme", events.KindOrderAccepted))
	if err != nil {
		t.Fatal(err)
	}
	acc := &eventsv1.OrderAccepted{}
	if err := events.Decode(msg.Header, msg.Data, acc); err != nil || acc.GetOrderId() != "1002" || acc.GetHiperOrderId() != hid {
		t.Fatalf("order.accepted %v %v", acc, err)
	}
	// Resend the other: received, and its approval back on the stream.
	r = cli("orders", "resolve", "acme", "10.03", "--resend")
	if r.code != 0 || !strings.Contains(r.stdout, "received") {
		t.Fatalf("resolve --resend: %+v", r)
	}
	sstream, _ := st.JS.Stream(ctx, st.NS.Stream(events.StreamStore))
	msg, err = sstream.GetLastMsgForSubject(ctx, st.NS.StoreSubject("acme", events.KindOrderApproved))
	approval := &eventsv1.StoreOrderApproved{}
	if err != nil || events.Decode(msg.Header, msg.Data, approval) != nil || approval.GetOrderId() != "10.03" {
		t.Fatalf("re-queued approval: %v %v", approval, err)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"orders", "resolve", "acme", "1001", "--resend"}, 1, "not allowed in this state"},
		{[]string{"orders", "resolve", "acme", "1004", "--hiper-id", "LV0001"}, 2, "must be the order's id in Hiper"},
		{[]string{"orders", "resolve", "acme", "1004"}, 2, "either --hiper-id ID or --resend"},
		{[]string{"orders", "resolve", "acme", "1004", "--resend", "--hiper-id", hid}, 2, "either --hiper-id ID or --resend"},
		{[]string{"orders", "show", "acme"}, 2, "want 2 argument(s)"},
		{[]string{"orders", "list", "ACME"}, 2, "invalid tenant"},
		{[]string{"orders", "list", "acme", "--state", "lost"}, 2, "--state goes with list"},
		{[]string{"orders", "show", "acme", "1001", "--resend"}, 2, "go with resolve"},
		{[]string{"orders", "frob", "acme"}, 2, "unknown subcommand"},
	} {
		r := cli(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 && tc.code == 1 {
			t.Errorf("%v: %+v, want exit %d and %q", tc.args, r, tc.code, tc.want)
		}
	}
}

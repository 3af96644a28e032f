package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

func TestOrdersCommands(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{})
	ctx := context.Background()
	env := st.Env()
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
		{OrderID: "1005", State: orders.StateAccepted, HiperOrderID: "9a1c3b7e-2f4d-4e8a-b6c1-0d2e3f4a5b6c",
			HiperFailure: &orders.HiperFailure{HiperOrderID: "9a1c3b7e-2f4d-4e8a-b6c1-0d2e3f4a5b6c", At: now, Message: "Produto sem estoque"}},
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
	if r.code != 0 || !strings.Contains(r.stdout, "customer.document") || !strings.Contains(r.stdout, "A*** S***") {
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
	for _, want := range []string{"sent to Hiper", "(attempt 1): 0 item(ns)", "customer", "A*** S***", "Hiper answered", "HTTP 503 — proxy page",
		"orders resolve acme 1002 --hiper-id", "orders resolve acme 1002 --resend"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("show an order under review: no %q in %+v", want, r)
		}
	}
	if strings.Contains(r.stdout, "52998224725") || strings.Contains(r.stdout, "Ana Souza") {
		t.Fatalf("show an order under review names the customer: %s", r.stdout)
	}
	// Accepted, then failed by Hiper: the way out is a resend.
	if r := cli("orders", "show", "acme", "1005"); r.code != 0 || !strings.Contains(r.stdout, "Produto sem estoque") ||
		!strings.Contains(r.stdout, "orders resolve acme 1005 --resend") {
		t.Fatalf("show an order Hiper failed: %+v", r)
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
	// An order Hiper failed: resent, once.
	if r := cli("orders", "resolve", "acme", "1005", "--resend"); r.code != 0 || !strings.Contains(r.stdout, "received") {
		t.Fatalf("resend an order Hiper failed: %+v", r)
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

// `orders show` names no customer (CPF/CNPJ, e-mail, names, addresses,
// notes) unless --reveal, in text and JSON, in this process and through a
// console with an operator's key or the store's own; each reveal, in this
// process too, is in the console's audit log.
func TestOrdersShowMasksTheCustomer(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme"}})
	c := consoletest.Start(t, st, auth.Config{})
	ctx := context.Background()
	addr := &eventsv1.Address{Street: "Rua Augusta", Number: "1500", Complement: "Apto 12", District: "Consolação",
		PostalCode: "01310-100", IbgeCityCode: "3550308"}
	c.PutOrder(t, &orders.Record{Tenant: "acme", OrderID: "2001", State: orders.StateNeedsReview, Reason: "O Hiper não confirmou o pedido"},
		&eventsv1.StoreOrderApproved{OrderId: "2001",
			Customer:       &eventsv1.Customer{Document: "52998224725", Email: "joana.silva@example.com", Name: "Joana da Silva"},
			BillingAddress: addr, ShippingAddress: addr, Notes: "ligar para (11) 98765-4321"})
	personalData := []string{"52998224725", "joana.silva@example.com", "Joana", "Silva", "Rua Augusta", "Apto 12", "Consolação",
		"01310-100", "98765-4321"}
	through := throughConsole(t, c)
	for _, who := range []struct {
		name string
		env  map[string]string
	}{{"in this process", st.Env()}, {"an operator through the console", through(c.OperatorKey)}, {"acme's key", through(c.StoreKeys["acme"])}} {
		for _, args := range [][]string{{"show", "acme", "2001"}, {"show", "acme", "2001", "--json"}, {"list", "acme", "--json"}} {
			r := runEnv(t, who.env, append([]string{"orders"}, args...)...)
			for _, p := range personalData {
				if r.code != 0 || strings.Contains(r.stdout, p) {
					t.Errorf("%s: orders %v shows %q: %+v", who.name, args, p, r)
				}
			}
			if !strings.Contains(r.stdout, "*********25") || !strings.Contains(r.stdout, "J*** d*** S***") {
				t.Errorf("%s: orders %v, not masked as documented: %s", who.name, args, r.stdout)
			}
		}
		if r := runEnv(t, who.env, "orders", "show", "acme", "2001", "--json"); !strings.Contains(r.stdout, `"email": "j***@e***.com"`) ||
			!strings.Contains(r.stdout, `"postalCode": "01310-***"`) {
			t.Errorf("%s: orders show --json, not masked as documented: %s", who.name, r.stdout)
		}
		for _, args := range [][]string{{"--reveal"}, {"--json", "--reveal"}} {
			r := runEnv(t, who.env, append([]string{"orders", "show", "acme", "2001"}, args...)...)
			want := personalData
			if args[0] == "--reveal" {
				want = []string{"52998224725", "Joana da Silva"} // the text names the customer and the document
			}
			for _, p := range want {
				if r.code != 0 || !strings.Contains(r.stdout, p) {
					t.Errorf("%s: orders show %v does not show %q: %+v", who.name, args, p, r)
				}
			}
		}
	}

	// Each reveal is in the audit log: who, which order; what was only
	// read masked is not.
	entries, err := c.Client(c.OperatorKey).ListAuditEntries(ctx, &adminv1.ListAuditEntriesRequest{TenantId: "acme", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	revealed := map[string]int{}
	for _, e := range entries.GetEntries() {
		req := strings.ReplaceAll(e.GetRequestJson(), " ", "") // protojson spaces as it likes
		if e.GetAction() == "GetOrder" && strings.Contains(req, `"orderId":"2001"`) && strings.Contains(req, `"reveal":true`) {
			revealed[e.GetRole().String()+" "+e.GetSubject()]++
		}
	}
	if len(entries.GetEntries()) != 6 || revealed["ROLE_OPERATOR "+cliSubject()] != 2 || revealed["ROLE_OPERATOR ops-test"] != 2 ||
		revealed["ROLE_STORE acme-backend"] != 2 {
		t.Errorf("the audit log of the reveals: %v", entries.GetEntries())
	}
}

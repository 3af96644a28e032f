package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1/adminv1connect"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/console/admin"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/console"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

func code(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return connect.CodeUnknown
}

func wantCode(t *testing.T, what string, err error, want connect.Code) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("%s: got %v (%v), want %v", what, got, err, want)
	}
}

// A store platform's backend holds a store-role key: it reads and changes
// its own store, and nothing else.
func TestStoreKeyReachesOnlyItsStore(t *testing.T) {
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme", "beta"}})
	c := consoletest.Start(t, st, auth.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acme := c.Client(c.StoreKeys["acme"])

	who, err := acme.WhoAmI(ctx, &adminv1.WhoAmIRequest{})
	if err != nil || who.GetRole() != adminv1.Role_ROLE_STORE || who.GetTenantId() != "acme" {
		t.Fatalf("WhoAmI = %v, %v; want the store role for acme", who, err)
	}

	// Its own store: read and change.
	if _, err := acme.GetTenant(ctx, &adminv1.GetTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatalf("GetTenant(acme): %v", err)
	}
	upd, err := acme.UpdateTenantSettings(ctx, &adminv1.UpdateTenantSettingsRequest{TenantId: "acme",
		Settings:   &brokerv1.TenantSettings{DefaultBrand: "Marca da Acme", UpdateTitle: true},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"default_brand", "update_title"}}})
	if err != nil || upd.GetTenant().GetSettings().GetDefaultBrand() != "Marca da Acme" {
		t.Fatalf("UpdateTenantSettings(acme) = %v, %v", upd, err)
	}
	list, err := acme.ListTenants(ctx, &adminv1.ListTenantsRequest{})
	if err != nil || len(list.GetTenants()) != 1 || list.GetTenants()[0].GetTenantId() != "acme" {
		t.Fatalf("ListTenants = %v, %v; want acme only", list, err)
	}
	status, err := acme.GetStatus(ctx, &adminv1.GetStatusRequest{})
	if err != nil || len(status.GetTenants()) != 1 || status.GetTenants()[0].GetTenantId() != "acme" {
		t.Fatalf("GetStatus = %v, %v; want acme only", status, err)
	}
	if _, err := acme.ListOrders(ctx, &adminv1.ListOrdersRequest{TenantId: "acme"}); err != nil {
		t.Fatalf("ListOrders(acme): %v", err)
	}

	// A dead letter of beta counts for beta only, and acme cannot list it.
	if err := events.DeadLetterBody(ctx, st.JS, st.NS, events.Body{ID: "t1", Tenant: "beta", Consumer: "invoice-watcher",
		Code: "hiper_bad_answer", Cause: errors.New("bad answer"), Subject: "work"}); err != nil {
		t.Fatal(err)
	}
	opStatus, err := c.Client(c.OperatorKey).GetStatus(ctx, &adminv1.GetStatusRequest{TenantId: "beta"})
	if err != nil || len(opStatus.GetTenants()) != 1 || opStatus.GetTenants()[0].GetDeadLetters() != 1 {
		t.Fatalf("operator GetStatus(beta) = %v, %v; want one dead letter", opStatus, err)
	}
	if mine, err := acme.GetStatus(ctx, &adminv1.GetStatusRequest{TenantId: "acme"}); err != nil || mine.GetTenants()[0].GetDeadLetters() != 0 {
		t.Fatalf("GetStatus(acme) = %v, %v; want no dead letter", mine, err)
	}
	if dl, err := acme.ListDeadLetters(ctx, &adminv1.ListDeadLettersRequest{}); err != nil || len(dl.GetDeadLetters()) != 0 {
		t.Fatalf("acme lists dead letters %v, %v; want none of beta's", dl, err)
	}
	_, err = acme.RetryDeadLetter(ctx, &adminv1.RetryDeadLetterRequest{Id: 1})
	wantCode(t, "RetryDeadLetter(beta's)", err, connect.CodeNotFound)

	// Another store: neither read nor change.
	_, err = acme.GetTenant(ctx, &adminv1.GetTenantRequest{TenantId: "beta"})
	wantCode(t, "GetTenant(beta)", err, connect.CodePermissionDenied)
	_, err = acme.UpdateTenantSettings(ctx, &adminv1.UpdateTenantSettingsRequest{TenantId: "beta",
		Settings: &brokerv1.TenantSettings{DefaultBrand: "x"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"default_brand"}}})
	wantCode(t, "UpdateTenantSettings(beta)", err, connect.CodePermissionDenied)
	_, err = acme.PauseTenant(ctx, &adminv1.PauseTenantRequest{TenantId: "beta"})
	wantCode(t, "PauseTenant(beta)", err, connect.CodePermissionDenied)
	_, err = acme.SyncNow(ctx, &adminv1.SyncNowRequest{TenantId: "beta"})
	wantCode(t, "SyncNow(beta)", err, connect.CodePermissionDenied)
	_, err = acme.ListOrders(ctx, &adminv1.ListOrdersRequest{TenantId: "beta"})
	wantCode(t, "ListOrders(beta)", err, connect.CodePermissionDenied)
	_, err = acme.GetOrder(ctx, &adminv1.GetOrderRequest{TenantId: "beta", OrderId: "1"})
	wantCode(t, "GetOrder(beta)", err, connect.CodePermissionDenied)
	_, err = acme.QueryEvents(ctx, &adminv1.QueryEventsRequest{Filter: &adminv1.EventFilter{TenantId: "beta"}})
	wantCode(t, "QueryEvents(beta)", err, connect.CodePermissionDenied)
	// Its own store's log, yes (its customers revealed too:
	// TestRevealIsOwnTenantsAndAudited).
	if _, err := acme.QueryEvents(ctx, &adminv1.QueryEventsRequest{Filter: &adminv1.EventFilter{TenantId: "acme"}}); err != nil {
		t.Fatalf("QueryEvents(acme): %v", err)
	}
	_, err = acme.ListAuditEntries(ctx, &adminv1.ListAuditEntriesRequest{TenantId: "beta"})
	wantCode(t, "ListAuditEntries(beta)", err, connect.CodePermissionDenied)
	_, err = acme.GetStatus(ctx, &adminv1.GetStatusRequest{TenantId: "beta"})
	wantCode(t, "GetStatus(beta)", err, connect.CodePermissionDenied)
	_, err = acme.GetStreamUsage(ctx, &adminv1.GetStreamUsageRequest{})
	wantCode(t, "GetStreamUsage", err, connect.CodePermissionDenied)

	// beta is untouched.
	ops := c.Client(c.OperatorKey)
	beta, err := ops.GetTenant(ctx, &adminv1.GetTenantRequest{TenantId: "beta"})
	if err != nil || beta.GetTenant().GetSettings().GetDefaultBrand() != "" || beta.GetTenant().GetState() != brokerv1.TenantState_TENANT_STATE_ACTIVE {
		t.Fatalf("beta after the store key's attempts = %v, %v", beta, err)
	}
	all, err := ops.ListTenants(ctx, &adminv1.ListTenantsRequest{})
	if err != nil || len(all.GetTenants()) != 2 {
		t.Fatalf("operator ListTenants = %v, %v; want both", all, err)
	}

	// The audit log has the store's change, and its refused attempts; the
	// store sees only its own entries.
	mine, err := acme.ListAuditEntries(ctx, &adminv1.ListAuditEntriesRequest{})
	if err != nil || len(mine.GetEntries()) == 0 {
		t.Fatalf("ListAuditEntries = %v, %v", mine, err)
	}
	for _, e := range mine.GetEntries() {
		if e.GetTenantId() != "acme" {
			t.Errorf("the store sees an audit entry of %q", e.GetTenantId())
		}
	}
	// Newest first: the three refused changes of beta, the refused retry of
	// another store's dead letter, then the change.
	var actions []string
	for _, e := range mine.GetEntries() {
		actions = append(actions, e.GetAction()+" "+e.GetErrorCode())
	}
	want := []string{"SyncNow tenant_forbidden", "PauseTenant tenant_forbidden", "UpdateTenantSettings tenant_forbidden",
		"RetryDeadLetter dead_letter_not_found", "UpdateTenantSettings "}
	if len(actions) < len(want) || !slices.Equal(actions[:len(want)], want) {
		t.Fatalf("acme's audit entries = %q, want first %q", actions, want)
	}
	for _, e := range mine.GetEntries()[:3] {
		if e.GetSubject() != "acme-backend" || !strings.Contains(e.GetRequestJson(), "beta") {
			t.Errorf("refused attempt = %v; want acme-backend's, naming beta", e)
		}
	}
	got := mine.GetEntries()[4]
	if got.GetSubject() != "acme-backend" || got.GetOutcome() != "OK" || !strings.Contains(got.GetRequestJson(), "Marca da Acme") {
		t.Errorf("audit entry = %v; want acme-backend's UpdateTenantSettings", got)
	}
}

// A store's customers are its own data: whoever may read a tenant's orders
// and log may have them revealed (GetOrder's and an event filter's
// reveal), an operator any tenant's, a store's key its own store's only;
// each reveal is in the audit log, who, which tenant and order or filter,
// when. What is read masked is not.
// A refused mutating call's audit entry keeps the refusal's code, what a
// support person reading the log looks up (docs/console.md), beside the
// English message.
func TestRefusedCallIsAuditedWithItsCode(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme"}})
	c := consoletest.Start(t, st, auth.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acme, op := c.Client(c.StoreKeys["acme"]), c.Client(c.OperatorKey)
	c.PutOrder(t, &orders.Record{Tenant: "acme", OrderID: "4001", State: orders.StateAccepted},
		&eventsv1.StoreOrderApproved{OrderId: "4001"})

	_, err := acme.ResolveOrder(ctx, &adminv1.ResolveOrderRequest{TenantId: "acme", OrderId: "4001",
		Resolution: &adminv1.ResolveOrderRequest_Resend{Resend: true}})
	wantCode(t, "ResolveOrder(accepted)", err, connect.CodeFailedPrecondition)
	_, err = op.PauseTenant(ctx, &adminv1.PauseTenantRequest{TenantId: "nosuch"})
	wantCode(t, "PauseTenant(nosuch)", err, connect.CodeNotFound)
	if _, err := acme.PauseTenant(ctx, &adminv1.PauseTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatalf("PauseTenant(acme): %v", err)
	}
	// Refused before they ran: another store's tenant (filed under the
	// caller's own, which another store never reads), a request without
	// its resolution.
	_, err = acme.PauseTenant(ctx, &adminv1.PauseTenantRequest{TenantId: "beta"})
	wantCode(t, "PauseTenant(beta) with acme's key", err, connect.CodePermissionDenied)
	_, err = acme.ResolveOrder(ctx, &adminv1.ResolveOrderRequest{TenantId: "acme", OrderId: "4001"})
	wantCode(t, "ResolveOrder without a resolution", err, connect.CodeInvalidArgument)

	for _, w := range []struct{ tenant, action, outcome, code string }{
		{"acme", "ResolveOrder", "failed_precondition", "order_wrong_state"},
		{"nosuch", "PauseTenant", "not_found", "tenant_not_found"},
		{"acme", "PauseTenant", "OK", ""},
		{"acme", "PauseTenant", "permission_denied", "tenant_forbidden"},
		{"acme", "ResolveOrder", "invalid_argument", "resolution_required"},
	} {
		var found *adminv1.AuditEntry
		testkit.WaitFor(t, 15*time.Second, w.action+"'s audit entry", func() bool {
			entries, err := op.ListAuditEntries(ctx, &adminv1.ListAuditEntriesRequest{TenantId: w.tenant})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries.GetEntries() {
				if e.GetAction() == w.action && e.GetErrorCode() == w.code {
					found = e
					return true
				}
			}
			return false
		})
		if w.code == "tenant_forbidden" && !strings.Contains(found.GetRequestJson(), "beta") {
			t.Errorf("the refused attempt on beta does not say beta: %v", found)
		}
		if found.GetOutcome() != w.outcome || found.GetErrorCode() != w.code || (w.code != "") != (found.GetError() != "") {
			t.Errorf("%s(%s) audited as outcome %q, code %q, error %q; want %q, %q", w.action, w.tenant,
				found.GetOutcome(), found.GetErrorCode(), found.GetError(), w.outcome, w.code)
		}
	}
}

func TestRevealIsOwnTenantsAndAudited(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme", "beta"}})
	c := consoletest.Start(t, st, auth.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acme, op := c.Client(c.StoreKeys["acme"]), c.Client(c.OperatorKey)
	for _, tenant := range []string{"acme", "beta"} {
		c.PutOrder(t, &orders.Record{Tenant: tenant, OrderID: "3001", State: orders.StateAccepted},
			&eventsv1.StoreOrderApproved{OrderId: "3001", Notes: "entregar a Joana da Silva, portão azul",
				Customer:        &eventsv1.Customer{Document: "52998224725", Email: "joana.silva@example.com", Name: "Joana da Silva"},
				ShippingAddress: &eventsv1.Address{Street: "Rua Augusta", PostalCode: "01310-100"}})
	}
	personalData := []string{"52998224725", "joana.silva@example.com", "Joana", "Rua Augusta", "01310-100"}
	shows := func(o *adminv1.Order) (n int) {
		for _, p := range personalData {
			if strings.Contains(o.GetRecordJson(), p) || strings.Contains(o.GetApprovalJson(), p) {
				n++
			}
		}
		return n
	}

	masked, err := acme.GetOrder(ctx, &adminv1.GetOrderRequest{TenantId: "acme", OrderId: "3001"})
	if err != nil || shows(masked.GetOrder()) != 0 || !strings.Contains(masked.GetOrder().GetApprovalJson(), "j***@e***.com") {
		t.Fatalf("GetOrder(acme) = %v, %v; want the customer masked", masked, err)
	}
	for _, who := range []adminv1connect.AdminServiceClient{acme, op} {
		whole, err := who.GetOrder(ctx, &adminv1.GetOrderRequest{TenantId: "acme", OrderId: "3001", Reveal: true})
		if err != nil || shows(whole.GetOrder()) != len(personalData) {
			t.Fatalf("GetOrder(acme, reveal) = %v, %v; want the customer as sent", whole, err)
		}
	}
	if _, err := acme.QueryEvents(ctx, &adminv1.QueryEventsRequest{Filter: &adminv1.EventFilter{TenantId: "acme", Reveal: true}}); err != nil {
		t.Fatalf("QueryEvents(acme, reveal): %v", err)
	}
	_, err = acme.GetOrder(ctx, &adminv1.GetOrderRequest{TenantId: "beta", OrderId: "3001", Reveal: true})
	wantCode(t, "GetOrder(beta, reveal)", err, connect.CodePermissionDenied)
	_, err = acme.QueryEvents(ctx, &adminv1.QueryEventsRequest{Filter: &adminv1.EventFilter{TenantId: "beta", Reveal: true}})
	wantCode(t, "QueryEvents(beta, reveal)", err, connect.CodePermissionDenied)

	// A followed log is audited when it starts: every tenant's, by an
	// operator.
	sctx, stop := context.WithCancel(ctx)
	followed := make(chan struct{})
	defer func() { stop(); <-followed }()
	go func() {
		defer close(followed)
		// The call answers with the first event; there is none to come.
		if s, err := op.StreamEvents(sctx, &adminv1.StreamEventsRequest{Filter: &adminv1.EventFilter{Reveal: true}}); err == nil {
			for s.Receive() {
			}
			_ = s.Close()
		}
	}()
	audited := func(tenant, action string, role adminv1.Role, in string) bool {
		entries, err := op.ListAuditEntries(ctx, &adminv1.ListAuditEntriesRequest{TenantId: tenant})
		if err != nil {
			t.Fatal(err)
		}
		// protojson spaces its output as it likes.
		for _, e := range entries.GetEntries() {
			if e.GetAction() == action && e.GetRole() == role && e.GetOutcome() == "OK" && e.GetTime() != nil &&
				e.GetSubject() != "" && strings.Contains(strings.ReplaceAll(e.GetRequestJson(), " ", ""), in) {
				return true
			}
		}
		return false
	}
	testkit.WaitFor(t, 15*time.Second, "the followed reveal's audit entry", func() bool {
		return audited("", "StreamEvents", adminv1.Role_ROLE_OPERATOR, `"reveal":true`)
	})
	for _, e := range []struct {
		action string
		role   adminv1.Role
		in     string
	}{
		{"GetOrder", adminv1.Role_ROLE_STORE, `"orderId":"3001","reveal":true`},
		{"GetOrder", adminv1.Role_ROLE_OPERATOR, `"orderId":"3001","reveal":true`},
		{"QueryEvents", adminv1.Role_ROLE_STORE, `"reveal":true`},
	} {
		if !audited("acme", e.action, e.role, e.in) {
			t.Errorf("no audit entry of acme's %s by %v", e.action, e.role)
		}
	}
	if mine, err := acme.ListAuditEntries(ctx, &adminv1.ListAuditEntriesRequest{}); err != nil || len(mine.GetEntries()) != 3 {
		t.Errorf("acme's audit log = %v, %v; want its three reveals, not the masked read", mine, err)
	}
}

func TestCallsWithoutValidCredentialsAreRefused(t *testing.T) {
	st := brokertest.Start(t, brokertest.Options{})
	c := consoletest.Start(t, st, auth.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Client("").ListTenants(ctx, &adminv1.ListTenantsRequest{})
	wantCode(t, "no credentials", err, connect.CodeUnauthenticated)
	_, err = c.Client("hsk_not-a-key").ListTenants(ctx, &adminv1.ListTenantsRequest{})
	wantCode(t, "unknown key", err, connect.CodeUnauthenticated)
	if _, err := auth.New(ctx, auth.Config{}); !errors.Is(err, auth.ErrNoAuth) {
		t.Fatalf("auth.New without configuration = %v; want ErrNoAuth", err)
	}
}

// One definition, three protocols: the generated client over Connect and
// gRPC, and plain HTTP/JSON as curl would send it.
func TestServedOverGRPCAndHTTPJSON(t *testing.T) {
	st := brokertest.Start(t, brokertest.Options{})
	c := consoletest.Start(t, st, auth.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	grpcClient := c.Client(c.OperatorKey, connect.WithGRPC())
	list, err := grpcClient.ListTenants(ctx, &adminv1.ListTenantsRequest{})
	if err != nil || len(list.GetTenants()) != 1 {
		t.Fatalf("ListTenants over gRPC = %v, %v", list, err)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.Server.URL+"/hipersync.admin.v1.AdminService/GetTenant",
		bytes.NewBufferString(`{"tenantId":"acme"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.OperatorKey)
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var got struct {
		Tenant struct {
			TenantID string `json:"tenantId"`
			State    string `json:"state"`
		} `json:"tenant"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got.Tenant.TenantID != "acme" || got.Tenant.State != "TENANT_STATE_ACTIVE" {
		t.Fatalf("POST GetTenant as JSON: %d %s", resp.StatusCode, body)
	}

	// A mutating call is audited with its secret left out.
	_, err = c.Client(c.OperatorKey).ConnectTenant(ctx, &adminv1.ConnectTenantRequest{TenantId: "acme", SecurityKey: st.Keys["acme"]})
	if err != nil {
		t.Fatalf("ConnectTenant: %v", err)
	}
	entries, err := c.Client(c.OperatorKey).ListAuditEntries(ctx, &adminv1.ListAuditEntriesRequest{TenantId: "acme"})
	if err != nil || len(entries.GetEntries()) == 0 || entries.GetEntries()[0].GetAction() != "ConnectTenant" {
		t.Fatalf("audit after ConnectTenant = %v, %v", entries, err)
	}
	if strings.Contains(entries.GetEntries()[0].GetRequestJson(), st.Keys["acme"]) {
		t.Fatalf("the audit log holds the security key: %s", entries.GetEntries()[0].GetRequestJson())
	}

	usage, err := c.Client(c.OperatorKey).GetStreamUsage(ctx, &adminv1.GetStreamUsageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, u := range usage.GetStreams() {
		names[u.GetName()] = true
	}
	if !names[st.NS.Stream("HIPER")] || !names[st.NS.Stream("AUDIT")] {
		t.Fatalf("stream usage lists %v; want HIPER and AUDIT among them", names)
	}
}

// No entry, no reveal: when the audit log cannot store who was shown a
// customer, the reveal is refused with its code and text and sends no
// personal data; a masked read still works.
func TestRevealRefusedWhenNotAudited(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme"}})
	c := consoletest.Start(t, st, auth.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.PutOrder(t, &orders.Record{Tenant: "acme", OrderID: "3002", State: orders.StateAccepted},
		&eventsv1.StoreOrderApproved{OrderId: "3002", Customer: &eventsv1.Customer{Document: "52998224725", Name: "Joana da Silva"}})
	// The audit stream, full, refuses every new entry.
	audit, err := st.JS.Stream(ctx, st.NS.Stream(admin.AuditStream))
	if err != nil {
		t.Fatal(err)
	}
	cfg := audit.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 1, jetstream.DiscardNew
	if _, err := st.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := st.JS.Publish(ctx, st.NS.ServiceSubject("audit", "_"), []byte("{}")); err != nil && !strings.Contains(err.Error(), "maximum messages") {
		t.Fatal(err)
	}
	op := c.Client(c.OperatorKey)
	whole, err := op.GetOrder(ctx, &adminv1.GetOrderRequest{TenantId: "acme", OrderId: "3002", Reveal: true})
	wantCode(t, "GetOrder(reveal) with a full audit log", err, connect.CodeUnavailable)
	if r, ok := admin.RefusalOf(err); !ok || r.Code != "reveal_not_audited" || !strings.Contains(r.Text, "não foram mostrados") {
		t.Errorf("GetOrder(reveal) refusal = %+v, %v", r, ok)
	}
	if strings.Contains(whole.GetOrder().GetApprovalJson(), "52998224725") {
		t.Error("the refused reveal sent the customer's document")
	}
	_, err = op.QueryEvents(ctx, &adminv1.QueryEventsRequest{Filter: &adminv1.EventFilter{TenantId: "acme", Reveal: true}})
	wantCode(t, "QueryEvents(reveal) with a full audit log", err, connect.CodeUnavailable)
	masked, err := op.GetOrder(ctx, &adminv1.GetOrderRequest{TenantId: "acme", OrderId: "3002"})
	if err != nil || strings.Contains(masked.GetOrder().GetApprovalJson(), "52998224725") {
		t.Fatalf("GetOrder (masked) with a full audit log = %v, %v", masked, err)
	}
}

// A store's key that calls in a loop is refused beyond its bucket
// (rate_limited, with its Portuguese text), alone: another store's key and
// an operator go on as before.
func TestStoreKeyCallsAreLimited(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme", "beta"}})
	c := consoletest.Start(t, st, auth.Config{}, func(d *console.Deps) {
		d.StoreCalls = admin.CallLimit{PerSecond: 0.001, Burst: 3}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acme, beta, op := c.Client(c.StoreKeys["acme"]), c.Client(c.StoreKeys["beta"]), c.Client(c.OperatorKey)
	for i := range 3 {
		if _, err := acme.GetTenant(ctx, &adminv1.GetTenantRequest{TenantId: "acme"}); err != nil {
			t.Fatalf("acme's call %d of its burst: %v", i+1, err)
		}
	}
	_, err := acme.GetTenant(ctx, &adminv1.GetTenantRequest{TenantId: "acme"})
	wantCode(t, "acme's call beyond its burst", err, connect.CodeResourceExhausted)
	if r, ok := admin.RefusalOf(err); !ok || r.Code != "rate_limited" || !strings.Contains(r.Text, "Muitas chamadas") {
		t.Errorf("refusal = %+v, %v", r, ok)
	}
	if _, err := beta.GetTenant(ctx, &adminv1.GetTenantRequest{TenantId: "beta"}); err != nil {
		t.Errorf("beta's first call: %v", err)
	}
	for i := range 10 {
		if _, err := op.GetTenant(ctx, &adminv1.GetTenantRequest{TenantId: "acme"}); err != nil {
			t.Fatalf("the operator's call %d: %v", i+1, err)
		}
	}
}

package cli

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/config"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/console/admin"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// putReviewOrder stores order 2001 of acme, in review, with its customer.
func putReviewOrder(t *testing.T, st *brokertest.Stack) {
	t.Helper()
	consoletest.PutOrder(t, st, &orders.Record{Tenant: "acme", OrderID: "2001", State: orders.StateNeedsReview, Reason: "O Hiper não confirmou o pedido"},
		&eventsv1.StoreOrderApproved{OrderId: "2001", Customer: &eventsv1.Customer{Document: "52998224725", Name: "Joana da Silva"}})
}

// Without HIPERSYNC_API the CLI's own handler writes the console's audit
// log as the console does: each reveal (orders show, events tail, read or
// followed) and each mutating call (orders, tenant), under
// cli:<user>@<host>, in the stream the console's ListAuditEntries and audit
// page read (created by the first call when no console nor provision has);
// a read without --reveal is not recorded.
func TestInProcessCallsAreAudited(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme"}})
	putReviewOrder(t, st)
	env := st.Env()
	env["TOKEN_BROKER_ADDR"] = st.BrokerAddr
	for _, args := range [][]string{
		{"tenant", "show", "acme"},
		{"orders", "show", "acme", "2001"},
		{"orders", "show", "acme", "2001", "--json"},
		{"events", "tail", "--tenant", "acme", "--json"},
		{"orders", "show", "acme", "2001", "--reveal"},
		{"events", "tail", "--tenant", "acme", "--json", "--reveal"},
		{"orders", "resolve", "acme", "2001", "--resend"},
		{"tenant", "pause", "acme"},
	} {
		if r := runEnv(t, env, args...); r.code != 0 || r.stderr != "" {
			t.Fatalf("%v: %+v", args, r)
		}
	}

	// Followed: recorded when the stream starts, long before it ends.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan int, 1)
	var live brokertest.SyncBuffer
	go func() {
		done <- Run(ctx, Env{Stdout: &live, Stderr: &live, Getenv: config.Map(env)}, []string{"events", "tail", "--tenant", "acme", "--follow", "--json", "--reveal"})
	}()
	log, err := admin.JoinAudit(ctx, st.JS, st.NS, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the followed reveal in the audit log", func() bool {
		entries, err := log.List(ctx, "acme", 1)
		return err == nil && len(entries) == 1 && entries[0].GetAction() == "StreamEvents"
	})
	stop()
	if code := testkit.Recv(t, done, 10*time.Second, "events tail --follow to stop"); code != 0 {
		t.Fatalf("events tail --follow --reveal: exit %d, %s", code, live.String())
	}

	c := consoletest.Start(t, st, auth.Config{})
	resp, err := c.Client(c.OperatorKey).ListAuditEntries(context.Background(), &adminv1.ListAuditEntriesRequest{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ action, request string }{ // newest first
		{"StreamEvents", `"reveal":true`},
		{"PauseTenant", `"tenantId":"acme"`},
		{"ResolveOrder", `"resend":true`},
		{"QueryEvents", `"reveal":true`},
		{"GetOrder", `"orderId":"2001","reveal":true`},
	}
	entries := resp.GetEntries()
	if len(entries) != len(want) {
		t.Fatalf("the audit log holds %d entries, want %d: %v", len(entries), len(want), entries)
	}
	for i, e := range entries {
		req := strings.ReplaceAll(e.GetRequestJson(), " ", "") // protojson spaces as it likes
		if e.GetAction() != want[i].action || !strings.Contains(req, want[i].request) || e.GetTenantId() != "acme" ||
			e.GetSubject() != cliSubject() || !strings.HasPrefix(e.GetSubject(), "cli:") || !strings.Contains(e.GetSubject(), "@") ||
			e.GetRole() != adminv1.Role_ROLE_OPERATOR || e.GetOutcome() != "OK" {
			t.Errorf("entry %d = %v, want %s (%s) by %s for acme", i, e, want[i].action, want[i].request, cliSubject())
		}
	}
}

// When the audit log cannot take an entry, an in-process reveal does what
// the console does: no entry, no reveal. The command fails with the
// refusal's code and text, shows no personal data, and the failed write is
// logged on the stderr of whoever asked. The CLI does not reshape the
// stream.
func TestInProcessRevealRefusedWhenNotAudited(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme"}})
	putReviewOrder(t, st)
	// An audit stream that refuses every new entry: full, discarding new.
	ctx := context.Background()
	if _, err := st.JS.CreateStream(ctx, jetstream.StreamConfig{Name: st.NS.Stream(admin.AuditStream),
		Subjects: []string{st.NS.ServiceSubject("audit", ">")}, MaxMsgs: 1, Discard: jetstream.DiscardNew}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.JS.Publish(ctx, st.NS.ServiceSubject("audit", "_"), []byte("{}")); err != nil {
		t.Fatal(err)
	}

	r := runEnv(t, st.Env(), "orders", "show", "acme", "2001", "--reveal")
	if r.code != 1 || strings.Contains(r.stdout+r.stderr, "52998224725") {
		t.Fatalf("orders show --reveal with no audit log to write to: %+v", r)
	}
	for _, w := range []string{"level=ERROR", "audit log write failed; the reveal is refused", "action=GetOrder",
		"tenant=acme", "subject=" + cliSubject(), "[reveal_not_audited]", "Os dados pessoais não foram mostrados", "(personal data not revealed: the audit log"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not say %q: %q", w, r.stderr)
		}
	}
	// The CLI left the stream as it found it: its bound is the console's
	// and provision's to set.
	if s, err := st.JS.Stream(ctx, st.NS.Stream(admin.AuditStream)); err != nil || s.CachedInfo().Config.MaxMsgs != 1 {
		t.Errorf("the audit stream after the CLI: %v", err)
	}
}

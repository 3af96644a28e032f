package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// TestStatusShowsHiperOutage: while an order-forwarder replica notes that
// Hiper fails every call, `status` shows it for every tenant, and the
// tenant's own account outage for that tenant.
func TestStatusShowsHiperOutage(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme", "beta"}})
	env := st.Env()
	if r := runEnv(t, env, "status"); r.code != 0 || strings.Contains(r.stdout, "down") {
		t.Fatalf("status before any outage: %+v", r)
	}
	ctx := context.Background()
	kv, err := events.EnsureKV(ctx, st.JS, st.NS, ops.OutageBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []ops.Outage{
		{Scope: ops.ScopeEndpoint, Name: "POST /pedido-de-venda/", Since: time.Now().Add(-12 * time.Minute), LastError: "answered 503: Serviço indisponível", Replica: "r1"},
		{Scope: ops.ScopeTenant, Name: "beta", Since: time.Now().Add(-3 * time.Minute), LastError: "answered 500: conta suspensa", Replica: "r1"},
	} {
		b, _ := json.Marshal(o)
		if _, err := kv.Put(ctx, ops.OutageKey(o), b); err != nil {
			t.Fatal(err)
		}
	}
	r := runEnv(t, env, "status")
	if r.code != 0 {
		t.Fatalf("status: %+v", r)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		switch {
		case strings.HasPrefix(line, "acme"):
			if !strings.Contains(line, "down 12m") || !strings.Contains(line, "Serviço indisponível") {
				t.Errorf("acme: %q", line)
			}
		case strings.HasPrefix(line, "beta"):
			if !strings.Contains(line, "account down 3m") || !strings.Contains(line, "conta suspensa") {
				t.Errorf("beta: %q", line)
			}
		}
	}
	r = runEnv(t, env, "status", "acme", "--json")
	var views []ops.TenantStatus
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &views) != nil || len(views) != 1 || views[0].HiperOutage == nil {
		t.Fatalf("status --json: %+v", r)
	}
}

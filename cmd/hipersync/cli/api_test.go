package cli

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/testkit"

	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// The CLI as a client of a real console (HIPERSYNC_API) over real NATS and
// token-broker: a store-role API key reads and changes its own store, and
// is refused, with exit 3 and a message saying so, for another store and
// for what only operators do; a wrong token is refused as such.
func TestCLIAgainstTheConsoleWithAStoreKey(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme", "beta"}})
	c := consoletest.Start(t, st, auth.Config{})
	ca := filepath.Join(t.TempDir(), "console-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Server.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	// No NATS_URL nor TOKEN_BROKER_ADDR: everything goes through the API.
	as := func(token string, args ...string) result {
		t.Helper()
		return runEnv(t, map[string]string{"HIPERSYNC_API": c.Server.URL, "HIPERSYNC_TOKEN": token, "HIPERSYNC_API_CA": ca,
			"NATS_URL": "nats://127.0.0.1:1", "TOKEN_BROKER_ADDR": "127.0.0.1:1"}, args...)
	}
	store := c.StoreKeys["acme"]

	// Its own store: read and change.
	if r := as(store, "tenant", "show", "acme"); r.code != 0 || !strings.Contains(r.stdout, "active") {
		t.Fatalf("tenant show acme with acme's key: %+v", r)
	}
	if r := as(store, "tenant", "settings", "acme", "--default-brand", "Marca da Loja", "--update-images", "true"); r.code != 0 ||
		!strings.Contains(r.stdout, "Marca da Loja") {
		t.Fatalf("tenant settings acme with acme's key: %+v", r)
	}
	if r := as(store, "tenant", "list"); r.code != 0 || !strings.Contains(r.stdout, "acme") || strings.Contains(r.stdout, "beta") {
		t.Fatalf("tenant list with acme's key lists acme only: %+v", r)
	}

	if r := as(store, "status", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"tenant": "acme"`) || strings.Contains(r.stdout, "beta") {
		t.Fatalf("status with acme's key shows acme only: %+v", r)
	}
	if r := as(store, "status"); r.code != 0 || !strings.Contains(r.stdout, "acme") || strings.Contains(r.stdout, "STREAM") {
		t.Fatalf("status with acme's key, no streams: %+v", r)
	}

	if r := as(store, "sync", "acme", "--catalog", "--no-wait"); r.code != 0 || !strings.Contains(r.stdout, "requested") {
		t.Fatalf("sync acme --no-wait with acme's key: %+v", r)
	}
	if _, err := orders.Open(context.Background(), st.JS, st.NS); err != nil {
		t.Fatal(err)
	}
	if r := as(store, "orders", "list", "acme"); r.code != 0 || !strings.Contains(r.stdout, "no orders") {
		t.Fatalf("orders list acme with acme's key: %+v", r)
	}
	if r := as(store, "dlq", "list"); r.code != 0 || !strings.Contains(r.stdout, "no dead letters") {
		t.Fatalf("dlq list with acme's key: %+v", r)
	}
	if r := as(store, "events", "tail", "--json"); r.code != 0 {
		t.Fatalf("events tail with acme's key: %+v", r)
	}
	// --follow streams the store's new events until interrupted, then
	// exits 0.
	var live brokertest.SyncBuffer
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, Env{Stdout: &live, Stderr: &live, Getenv: config.Map(map[string]string{"HIPERSYNC_API": c.Server.URL,
			"HIPERSYNC_TOKEN": store, "HIPERSYNC_API_CA": ca})}, []string{"events", "tail", "--follow", "--source", "store"})
	}()
	testkit.WaitFor(t, 15*time.Second, "the followed store event", func() bool {
		_, _ = st.JS.Publish(context.Background(), st.NS.StoreSubject("acme", "order.approved"), []byte(`{"orderId":"F-1"}`))
		return strings.Contains(live.String(), "acme")
	})
	stop()
	if code := testkit.Recv(t, done, 30*time.Second, "events tail --follow to stop"); code != 0 {
		t.Fatalf("events tail --follow with acme's key: exit %d, %s", code, live.String())
	}

	// Another store: refused, exit 3, one line naming the tenant.
	for _, args := range [][]string{
		{"tenant", "show", "beta"},
		{"tenant", "settings", "beta", "--default-brand", "x"},
		{"tenant", "pause", "beta"},
		{"status", "beta"},
		{"orders", "list", "beta"},
		{"tenant", "credentials", "beta", "--out", filepath.Join(t.TempDir(), "beta.creds")},
		{"orders", "show", "beta", "1001"},
		{"orders", "resolve", "beta", "1001", "--resend"},
		{"sync", "beta", "--no-wait"},
		{"sync", "beta", "--approve"},
		{"events", "tail", "--tenant", "beta"},
		{"events", "tail", "--tenant", "beta", "--follow"},
	} {
		r := as(store, args...)
		if r.code != exitRefused || !strings.Contains(r.stderr, "refused") || !strings.Contains(r.stderr, `"beta"`) ||
			!strings.Contains(r.stderr, "Esta chave só dá acesso à sua própria loja") || !strings.Contains(r.stderr, "[tenant_forbidden]") ||
			strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v with acme's key: %+v, want exit %d and a refusal naming beta, in Portuguese with its code", args, r, exitRefused)
		}
	}
	// With --json, the refusal's fields.
	r := as(store, "tenant", "show", "beta", "--json")
	var refusal struct{ Error, Code, Message string }
	if r.code != exitRefused || json.Unmarshal([]byte(r.stderr), &refusal) != nil || refusal.Code != "tenant_forbidden" ||
		!strings.Contains(refusal.Message, "sua própria loja") || !strings.Contains(refusal.Error, `may not reach tenant "beta"`) {
		t.Errorf("tenant show beta --json with acme's key: %+v; want exit %d and the refusal's fields", r, exitRefused)
	}
	if r := as(c.OperatorKey, "tenant", "show", "beta", "--json"); r.code != 0 || !strings.Contains(r.stdout, "TENANT_STATE_ACTIVE") ||
		strings.Contains(r.stdout, "defaultBrand") {
		t.Fatalf("beta after the refusals, as an operator: %+v", r)
	}

	if r := as(store, "status", "--streams"); r.code != exitRefused || !strings.Contains(r.stderr, "operators only") ||
		!strings.Contains(r.stderr, "Só um operador da implantação pode fazer isto. Peça a um operador. [operators_only]") {
		t.Fatalf("status --streams with a store's key: %+v", r)
	}
	if r := as(c.OperatorKey, "status", "--streams"); r.code != 0 || !strings.Contains(r.stdout, "STREAM") {
		t.Fatalf("status --streams with an operator's key: %+v", r)
	}

	// A wrong token, and none.
	if r := as("not-a-key", "tenant", "show", "acme"); r.code != exitRefused || !strings.Contains(r.stderr, "refused the token (HIPERSYNC_TOKEN)") {
		t.Fatalf("a wrong token: %+v", r)
	}
	if r := as("", "tenant", "show", "acme"); r.code != 2 || !strings.Contains(r.stderr, "HIPERSYNC_TOKEN is not") {
		t.Fatalf("no token: %+v", r)
	}
}

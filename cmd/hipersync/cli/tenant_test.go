package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

type result struct {
	code           int
	stdout, stderr string
}

// run runs the CLI in this process against st: its NATS namespace and
// token-broker.
func run(t *testing.T, st *brokertest.Stack, stdin string, args ...string) result {
	t.Helper()
	env := st.Env()
	env["TOKEN_BROKER_ADDR"] = st.BrokerAddr
	return runWith(env, stdin, args...)
}

func runEnv(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	return runWith(env, "", args...)
}

func runWith(env map[string]string, stdin string, args ...string) result {
	var out, errOut bytes.Buffer
	code := Run(context.Background(), Env{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(stdin), Getenv: config.Map(env)}, args)
	return result{code, out.String(), errOut.String()}
}

func TestTenantCommands(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"seed"}})
	key := st.Keys["seed"]
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := run(t, st, "", "tenant", "connect", "acme", "--key-file", keyFile)
	if r.code != 0 || !strings.Contains(r.stdout, "active") {
		t.Fatalf("connect: %+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, key) {
		t.Fatal("the key was printed")
	}
	// The key from stdin, and --json.
	r = run(t, st, key, "tenant", "connect", "beta", "--key-file", "-", "--json")
	var got struct {
		TenantID string `json:"tenantId"`
		State    string `json:"state"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil || got.TenantID != "beta" || got.State != "TENANT_STATE_ACTIVE" {
		t.Fatalf("connect from stdin --json: %+v %+v", r, got)
	}

	r = run(t, st, strings.Repeat("0", 64), "tenant", "connect", "wrong", "--key-file", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "refused") || strings.Count(r.stderr, "\n") != 1 ||
		!strings.Contains(r.stderr, "O Hiper recusou a chave de segurança informada.") || !strings.Contains(r.stderr, "[key_refused]") {
		t.Fatalf("wrong key: %+v", r)
	}

	// A mistyped key for a working store: Hiper refuses it, and the store
	// keeps its key and its state, as the error says.
	r = run(t, st, strings.Repeat("1", 64), "tenant", "connect", "acme", "--key-file", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "refused") || !strings.Contains(r.stderr, "acme keeps its current key and stays active") {
		t.Fatalf("a refused key for an active store: %+v", r)
	}
	if r = run(t, st, "", "tenant", "show", "acme"); r.code != 0 || !strings.Contains(r.stdout, "active") {
		t.Fatalf("after a refused key: %+v", r)
	}
	if tok, err := st.Broker.Token(context.Background(), "acme"); err != nil || tok.Value == "" {
		t.Fatalf("token after a refused key: %v", err)
	}

	r = run(t, st, "", "tenant", "settings", "acme", "--default-brand", "Sem marca", "--stock-interval", "30s",
		"--payment-map", "PIX=17", "--quote", "USD=5.40", "--update-images=true")
	if r.code != 0 || !strings.Contains(r.stdout, "Sem marca") || !strings.Contains(r.stdout, "PIX=17") || !strings.Contains(r.stdout, "30s") {
		t.Fatalf("settings: %+v", r)
	}
	r = run(t, st, "", "tenant", "settings", "acme", "--stock-interval", "1s")
	if r.code != 1 || !strings.Contains(r.stderr, "stock-interval must be at least") {
		t.Fatalf("a 1s stock interval: %+v", r)
	}

	for _, step := range []struct{ cmd, state, reason string }{
		{"pause", "paused", "pausada por um operador; a chave de segurança foi mantida. Retome a loja para voltar a sincronizar. [paused_by_operator]"},
		{"resume", "active", ""},
		{"disconnect", "not_connected", "[disconnected_by_operator]"},
	} {
		r = run(t, st, "", "tenant", step.cmd, "acme")
		if r.code != 0 || !strings.Contains(r.stdout, step.state) || !strings.Contains(r.stdout, step.reason) {
			t.Fatalf("%s: %+v", step.cmd, r)
		}
	}
	r = run(t, st, "", "tenant", "pause", "acme")
	if r.code != 1 || !strings.Contains(r.stderr, "not connected") || !strings.Contains(r.stderr, "A loja não está conectada ao Hiper") ||
		!strings.Contains(r.stderr, "[tenant_not_connected]") {
		t.Fatalf("pause a disconnected tenant: %+v", r)
	}

	r = run(t, st, "", "tenant", "list")
	for _, want := range []string{"acme", "not_connected", "beta", "active", "wrong", "invalid_key"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("list lacks %q: %+v", want, r)
		}
	}
	r = run(t, st, "", "tenant", "show", "nobody")
	if r.code != 1 || !strings.Contains(r.stderr, "not registered") {
		t.Fatalf("show an unknown tenant: %+v", r)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tenant"}, "missing subcommand"},
		{[]string{"tenant", "connect", "acme"}, "--key-file is required"},
		{[]string{"tenant", "show"}, "want 1 argument"},
		{[]string{"tenant", "pause", "acme", "--default-brand", "x"}, "settings flags go with"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"tenant", "settings", "acme", "--stock-interval", "soon"}, "want a duration"},
	} {
		r := runEnv(t, map[string]string{"NATS_URL": "nats://127.0.0.1:1", "TOKEN_BROKER_ADDR": "127.0.0.1:1"}, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: %+v, want exit 2 and %q", tc.args, r, tc.want)
		}
	}
}

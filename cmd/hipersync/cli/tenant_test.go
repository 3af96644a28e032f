package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/hipersim/simtest"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/token-broker/broker"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startBroker runs a real token-broker (own namespace, real NATS and Redis,
// in-process hiper-sim) and returns its address and the sim account's key.
func startBroker(t *testing.T) (addr, key string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	key = randomHex(32)
	sim := simtest.Start(t, hipersim.Config{Keys: []string{key}, Seed: hipersim.SeedEmpty})
	nc, err := nats.Connect(envOr("NATS_URL", nats.DefaultURL))
	if err != nil {
		t.Fatalf("connect to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	ns := events.Namespace{Prefix: "cli" + randomHex(5)}
	js, _ := jetstream.New(nc)
	t.Cleanup(func() { _ = js.DeleteKeyValue(context.Background(), ns.Bucket(tenant.Bucket)) })
	opts, _ := redis.ParseURL(envOr("REDIS_URL", "redis://127.0.0.1:6379/0"))
	rdb := redis.NewClient(opts)
	t.Cleanup(func() {
		for _, k := range rdb.Keys(context.Background(), "hipersync:"+ns.Prefix+":*").Val() {
			rdb.Del(context.Background(), k)
		}
		_ = rdb.Close()
	})
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	srv, b, err := broker.Start(ctx, broker.Deps{NATS: nc, Redis: rdb, Namespace: ns, HiperBaseURL: sim.URL,
		MasterKey: master, Health: telemetry.NewHealth(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	go func() { _ = b.Run(ctx) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), key
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, addr string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"TOKEN_BROKER_ADDR": addr}
	code := Run(context.Background(), Env{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(stdin), Getenv: config.Map(env)}, args)
	return result{code, out.String(), errOut.String()}
}

func TestTenantCommands(t *testing.T) {
	t.Parallel()
	addr, key := startBroker(t)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := run(t, addr, "", "tenant", "connect", "acme", "--key-file", keyFile)
	if r.code != 0 || !strings.Contains(r.stdout, "active") {
		t.Fatalf("connect: %+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, key) {
		t.Fatal("the key was printed")
	}
	// The key from stdin, and --json.
	r = run(t, addr, key, "tenant", "connect", "beta", "--key-file", "-", "--json")
	var got struct {
		TenantID string `json:"tenantId"`
		State    string `json:"state"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil || got.TenantID != "beta" || got.State != "TENANT_STATE_ACTIVE" {
		t.Fatalf("connect from stdin --json: %+v %+v", r, got)
	}

	r = run(t, addr, strings.Repeat("0", 64), "tenant", "connect", "wrong", "--key-file", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "refused") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("wrong key: %+v", r)
	}

	r = run(t, addr, "", "tenant", "settings", "acme", "--default-brand", "Sem marca", "--stock-interval", "30s",
		"--payment-map", "PIX=17", "--quote", "USD=5.40", "--update-images=true")
	if r.code != 0 || !strings.Contains(r.stdout, "Sem marca") || !strings.Contains(r.stdout, "PIX=17") || !strings.Contains(r.stdout, "30s") {
		t.Fatalf("settings: %+v", r)
	}
	r = run(t, addr, "", "tenant", "settings", "acme", "--stock-interval", "1s")
	if r.code != 1 || !strings.Contains(r.stderr, "stock-interval must be at least") {
		t.Fatalf("a 1s stock interval: %+v", r)
	}

	for _, step := range []struct{ cmd, state string }{{"pause", "paused"}, {"resume", "active"}, {"disconnect", "not_connected"}} {
		r = run(t, addr, "", "tenant", step.cmd, "acme")
		if r.code != 0 || !strings.Contains(r.stdout, step.state) {
			t.Fatalf("%s: %+v", step.cmd, r)
		}
	}
	r = run(t, addr, "", "tenant", "pause", "acme")
	if r.code != 1 || !strings.Contains(r.stderr, "not connected") {
		t.Fatalf("pause a disconnected tenant: %+v", r)
	}

	r = run(t, addr, "", "tenant", "list")
	for _, want := range []string{"acme", "not_connected", "beta", "active", "wrong", "invalid_key"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("list lacks %q: %+v", want, r)
		}
	}
	r = run(t, addr, "", "tenant", "show", "nobody")
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
		r := run(t, "127.0.0.1:1", "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: %+v, want exit 2 and %q", tc.args, r, tc.want)
		}
	}
	r := run(t, "127.0.0.1:1", "", "orders", "list", "acme")
	if r.code != 1 || !strings.Contains(r.stderr, "not implemented yet") {
		t.Errorf("a command still to come: %+v", r)
	}
}

package catalogsync

import (
	"context"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

func TestMainServesHealthAndMetricsAndStops(t *testing.T) {
	t.Parallel()
	// The binary calls token-broker over mutual TLS with its own identity.
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo, TLS: true})
	tlsEnv := s.ClientTLS(t, "catalog-poller")
	addr := testkit.FreeAddr(t)
	vars := s.Env()
	maps.Copy(vars, map[string]string{
		"TOKEN_BROKER_ADDR": s.BrokerAddr, "HIPER_BASE_URL": s.Sim.URL, "HTTP_ADDR": addr,
		"EVENTS_FORMAT": "json", "TOKEN_BROKER_TLS_CA": tlsEnv.CA, "TOKEN_BROKER_TLS_CERT": tlsEnv.Cert, "TOKEN_BROKER_TLS_KEY": tlsEnv.Key,
	})
	env := config.Map(vars)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs testkit.SyncBuffer
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- Main(ctx, env, &logs) }()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testkit.WaitFor(t, 10*time.Second, "/readyz", func() bool { code, _ := get("/readyz"); return code == http.StatusOK })
	s.waitSynced(t, "acme", start)
	// The process's token cache: one token for the whole feed.
	if n := s.TokenCalls(); n != 1 {
		t.Errorf("token-broker answered %d GetToken calls for a full sync, want 1", n)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`hipersync_sync_runs_total{kind="catalog",outcome="ok"}`,
		`hipersync_sync_items_published_total{kind="catalog",tenant="acme"} 79`,
		`hipersync_hiper_calls_total{kind="catalog",tenant="acme"}`,
		`hipersync_sync_lag_seconds{kind="catalog",tenant="acme"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if n := len(s.upserts("acme")); n != demoPublished {
		t.Fatalf("%d products published as JSON, want %d", n, demoPublished)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Main: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Main did not stop within 20s of its context ending")
	}
	if !strings.Contains(logs.String(), `"msg":"catalog-poller stopped"`) {
		t.Fatalf("no stop logged: %s", logs.String())
	}
}

func TestMainNamesABadVariable(t *testing.T) {
	t.Parallel()
	err := Main(context.Background(), config.Map(map[string]string{"POLL_CONCURRENCY": "0", "POLL_TENANT_RATE": "fast", "LOG_LEVEL": "verbose"}), io.Discard)
	for _, name := range []string{"POLL_CONCURRENCY", "POLL_TENANT_RATE", "LOG_LEVEL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Fatalf("Main with bad variables: %v; want %s named", err, name)
		}
	}
}

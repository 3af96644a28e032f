package cli

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

func TestSyncShowsProgressOfAFullResync(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{})
	ctx := context.Background()
	statusKV, _, err := syncstatus.EnsureBuckets(ctx, st.JS, st.NS)
	if err != nil {
		t.Fatal(err)
	}
	if err := syncstatus.UpdateStatus(ctx, statusKV, "acme", syncstatus.Catalog, func(s *syncstatus.Status) {
		s.FullRunning, s.FullCursor, s.Products = true, 4200, 100000
	}); err != nil {
		t.Fatal(err)
	}
	var out brokertest.SyncBuffer
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		kinds := []syncstatus.Kind{syncstatus.Catalog, syncstatus.Stock}
		showProgress(ctx, &out, localViews(&streams{nc: st.NATS, js: st.JS, ns: st.NS}, "acme", kinds), "acme", kinds, 10*time.Millisecond, stop)
	}()
	testkit.WaitFor(t, 20*time.Second, "a progress line", func() bool { return strings.Contains(out.String(), "\n") })
	close(stop)
	testkit.Recv(t, done, 10*time.Second, "the progress to stop")
	line := strings.SplitN(out.String(), "\n", 2)[0]
	if !strings.Contains(line, "catalog: full resync at sync point 4200") || !strings.Contains(line, "100000 products") ||
		!strings.Contains(line, "stock: waiting for a poller") {
		t.Fatalf("progress: %q", line)
	}
}

// TestSyncWaitShowsProgressThroughTheConsole: with HIPERSYNC_API, `sync`
// waits through the console and prints the same progress lines as with
// NATS at hand, read from the console's status.
func TestSyncWaitShowsProgressThroughTheConsole(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme"}})
	c := consoletest.Start(t, st, auth.Config{})
	ca := filepath.Join(t.TempDir(), "console-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Server.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	statusKV, _, err := syncstatus.EnsureBuckets(context.Background(), st.JS, st.NS)
	if err != nil {
		t.Fatal(err)
	}
	if err := syncstatus.UpdateStatus(context.Background(), statusKV, "acme", syncstatus.Catalog, func(s *syncstatus.Status) {
		s.FullRunning, s.FullCursor, s.Products = true, 4200, 100000
	}); err != nil {
		t.Fatal(err)
	}
	// No poller runs: the call waits out its timeout, printing progress
	// every 2s: 4s leave the first line 2s to spare on a loaded machine.
	r := runEnv(t, map[string]string{"HIPERSYNC_API": c.Server.URL, "HIPERSYNC_TOKEN": c.StoreKeys["acme"], "HIPERSYNC_API_CA": ca,
		"NATS_URL": "nats://127.0.0.1:1", "TOKEN_BROKER_ADDR": "127.0.0.1:1"}, "sync", "acme", "--catalog", "--timeout", "4s")
	if !strings.Contains(r.stderr, "catalog: full resync at sync point 4200 of acme's feed, 100000 products known") {
		t.Fatalf("sync --wait through the console printed no progress: %+v", r)
	}
	if strings.Contains(r.stderr, "stock") {
		t.Fatalf("progress of a kind not asked for: %q", r.stderr)
	}
}

package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/syncstatus"
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
		showProgress(ctx, &out, &streams{nc: st.NATS, js: st.JS, ns: st.NS}, "acme", []syncstatus.Kind{syncstatus.Catalog, syncstatus.Stock}, 10*time.Millisecond, stop)
	}()
	brokertest.WaitFor(t, 5*time.Second, "a progress line", func() bool { return strings.Contains(out.String(), "\n") })
	close(stop)
	<-done
	line := strings.SplitN(out.String(), "\n", 2)[0]
	if !strings.Contains(line, "catalog: full resync at sync point 4200") || !strings.Contains(line, "100000 products") ||
		!strings.Contains(line, "stock: waiting for a poller") {
		t.Fatalf("progress: %q", line)
	}
}

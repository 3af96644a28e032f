package catalogsync

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/feed"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/schedule/scheduletest"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// A product-state bucket at its bound refuses every write: the initial sync
// stops with a sync.failed storage_full (Portuguese text for the merchant),
// the status says which bucket and what to do, hipersync_store_full_total
// counts it; once room is made the sync resumes from its saved cursor and
// every product reaches the store once, its state recorded.
func TestFullStateBucketFailsVisiblyAndResumes(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Sim: hipersim.Config{Batch: 20},
		Bounds: map[string]string{"HIPERSYNC_BUCKET_MAX_BYTES": "64KiB"}})
	catalog := hipersim.GenerateCatalog(200, 2, 0, 7)
	loadInFamilies(t, s.Sim.Sim, s.Keys["acme"], catalog)
	r := s.replica(t, scheduletest.Fast())

	f := s.syncFailed(t, feed.FailureStorageFull)
	_, msg, action := feed.FailureOf(feed.ErrStoreFull)
	if f.GetKind() != "catalog" || f.GetMessage() != msg || f.GetAction() != action {
		t.Fatalf("sync.failed: %v", f)
	}
	bucket := s.NS.Bucket(StateBucket)
	stuck := s.status(t, "acme")
	if stuck.InitialDone || stuck.Cursor == 0 || !strings.Contains(stuck.LastError, bucket+" is full") ||
		!strings.Contains(stuck.LastError, "HIPERSYNC_BUCKET_MAX_BYTES") {
		t.Fatalf("status while the bucket is full: %+v", stuck)
	}
	if n := fullCount(t, "KV_"+bucket); n < 1 {
		t.Fatalf("hipersync_store_full_total{stream=KV_%s} = %v", bucket, n)
	}

	// Room is made: the bound raised, as `hipersync provision` does.
	ctx := context.Background()
	stream, err := s.JS.Stream(ctx, "KV_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	cfg.MaxBytes = 8 << 20
	if _, err := s.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, "the initial sync to finish", func() bool { return s.status(t, "acme").InitialDone })
	s.events.CaughtUp(t)

	cursors := r.Feed.Cursors()
	for i, c := range cursors[1:] {
		if c == 0 {
			t.Fatalf("feed call %d restarted the sync from 0 (all: %v)", i+1, cursors)
		}
	}
	ups := s.upserts("acme")
	for _, p := range catalog {
		if n := len(ups[p.ID]); n != 1 {
			t.Fatalf("product %s published %d times, want once", p.Name, n)
		}
	}
	kv, err := s.JS.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for k := range keys.Keys() {
		if strings.HasPrefix(k, "acme.") {
			records++
		}
	}
	if records != 200 {
		t.Fatalf("%d family records in %s, want 200", records, bucket)
	}
}

// fullCount reads hipersync_store_full_total for stream.
func fullCount(t *testing.T, stream string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(events.StorageMetrics())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stream" && l.GetValue() == stream {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

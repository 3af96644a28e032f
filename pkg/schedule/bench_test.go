package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// BenchmarkScheduler2000Tenants runs one replica's scheduler for 2,000
// tenants polled every 60s, in steady state (each tenant last ran within
// the past interval), for one interval, with a job that does nothing: what
// is measured is the scheduler — leases, status writes, watches, timers.
// It reports the replica's CPU use and how far each run started from its
// planned time, i.e. the spread of the actual intervals around 60s.
// HIPERSYNC_BENCH_SCHED_WINDOW shortens the window (default 60s).
func BenchmarkScheduler2000Tenants(b *testing.B) {
	const tenants = 2000
	const interval = 60 * time.Second
	window := interval
	if v, err := time.ParseDuration(os.Getenv("HIPERSYNC_BENCH_SCHED_WINDOW")); err == nil && v > 0 {
		window = v
	}
	e := newEnv(b)
	ctx := context.Background()
	status, _, err := syncstatus.EnsureBuckets(ctx, e.js, e.ns)
	if err != nil {
		b.Fatal(err)
	}
	begin := time.Now().Add(3 * time.Second) // the scheduler loads before the first is due
	for i := range tenants {
		id := fmt.Sprintf("t%04d", i)
		e.setTenant(id, active, nil)
		next := begin.Add(time.Duration(rand.Int64N(int64(window))))
		st, _ := json.Marshal(syncstatus.Status{Tenant: id, Kind: syncstatus.Stock, InitialDone: true, TargetInterval: syncstatus.Duration(interval),
			LastRunAt: next.Add(-interval), LastSuccessAt: next.Add(-interval), NextRunAt: next})
		if _, err := status.Put(ctx, syncstatus.StatusKey(id, syncstatus.Stock), st); err != nil {
			b.Fatal(err)
		}
	}

	var mu sync.Mutex
	var late []time.Duration
	job := func(ctx context.Context, r *Run) error {
		d := r.Start.Sub(r.Status().NextRunAt)
		mu.Lock()
		late = append(late, d)
		mu.Unlock()
		return nil
	}
	b.ResetTimer()
	cpu0, wall0 := testkit.CPUTime(b), time.Now()
	_, stop := e.start(job, Options{Interval: interval, LeaseTTL: 30 * time.Second})
	testkit.Until(time.Until(begin.Add(window+5*time.Second)), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(late) >= tenants
	})
	cpu, wall := testkit.CPUTime(b)-cpu0, time.Since(wall0)
	stop()
	b.StopTimer()

	mu.Lock()
	defer mu.Unlock()
	if len(late) < tenants {
		b.Fatalf("%d of %d tenants ran in the window", len(late), tenants)
	}
	abs := make([]time.Duration, len(late))
	for i, d := range late {
		abs[i] = d.Abs()
	}
	slices.Sort(abs)
	p := func(q float64) float64 { return float64(abs[int(q*float64(len(abs)-1))].Microseconds()) / 1000 }
	b.Logf("%d runs in %s; start vs plan |deviation| p50 %.1fms p99 %.1fms max %.1fms; CPU %s", len(late), wall.Round(time.Millisecond),
		p(0.5), p(0.99), p(1), cpu.Round(time.Millisecond))
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "sched-cpu-%")
	b.ReportMetric(p(0.99), "interval-jitter-ms")
	b.ReportMetric(p(0.5), "interval-jitter-p50-ms")
}

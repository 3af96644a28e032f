package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/stepscope"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// BenchmarkGrowthScheduler doubles the tenants of one replica's scheduler
// four times, 250 to 4,000, each due once at a steady 200 runs a second
// (so the window grows with the tenants), with a job that does nothing, and
// reports at each step the scheduler's CPU per run and the heap it holds
// per tenant, beyond what a scheduler of no tenant costs (measured first,
// the same way). Both should stay flat: a tenant costs the same however
// many others there are. benchtable folds the steps into one row and a
// chart.
func BenchmarkGrowthScheduler(b *testing.B) {
	const runsPerSecond = 200
	for range b.N {
		idleCPU, idleHeap := schedulerStep(b, 0, 0)
		for n := 250; n <= 4000; n *= 2 {
			cpu, heap := schedulerStep(b, n, time.Duration(n)*time.Second/runsPerSecond)
			b.ReportMetric(float64((cpu-idleCPU).Microseconds())/float64(n), fmt.Sprintf("cpu-us/tenant@%d", n))
			b.ReportMetric(float64(heap-idleHeap)/1024/float64(n), fmt.Sprintf("heap-KB/tenant@%d", n))
		}
	}
}

// schedulerStep runs a scheduler of n tenants until each has run once, in
// a window of its own namespace, and returns the CPU it took and the heap
// it holds (after a collection) beyond what the process held before. With
// no tenant it runs the scheduler until its first would have been due.
func schedulerStep(b *testing.B, n int, window time.Duration) (cpu time.Duration, heap int64) {
	const interval = time.Hour // each tenant is due once in the window
	step := stepscope.New(b)
	defer step.Close()
	e := newEnv(step)
	ctx := context.Background()
	status, _, err := syncstatus.EnsureBuckets(ctx, e.js, e.ns)
	if err != nil {
		b.Fatal(err)
	}
	begin := time.Now().Add(3*time.Second + window/4) // the scheduler loads before the first is due
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				id := fmt.Sprintf("t%04d", i)
				e.setTenant(id, active, nil)
				next := begin.Add(time.Duration(rand.Int64N(int64(window))))
				st, _ := json.Marshal(syncstatus.Status{Tenant: id, Kind: syncstatus.Stock, InitialDone: true, TargetInterval: syncstatus.Duration(interval),
					LastRunAt: next.Add(-interval), LastSuccessAt: next.Add(-interval), NextRunAt: next})
				if _, err := status.Put(ctx, syncstatus.StatusKey(id, syncstatus.Stock), st); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	testkit.Wait(b, &wg, 5*time.Minute, "the tenants and their statuses written")
	if b.Failed() {
		b.FailNow()
	}

	var ran atomic.Int64
	job := func(ctx context.Context, r *Run) error { ran.Add(1); return nil }
	heap0 := testkit.HeapInUse()
	cpu0 := testkit.CPUTime(b)
	_, stop := e.start(job, Options{Interval: interval, LeaseTTL: 30 * time.Second})
	if n == 0 {
		time.Sleep(time.Until(begin)) // an idle scheduler's time, not a wait for a condition
	}
	testkit.WaitFor(b, time.Until(begin)+window+time.Minute, "every tenant run once", func() bool { return ran.Load() >= int64(n) })
	cpu = testkit.CPUTime(b) - cpu0
	heap = int64(testkit.HeapInUse()) - int64(heap0)
	stop()
	return cpu, heap
}

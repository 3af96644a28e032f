package watcher_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/stepscope"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// BenchmarkGrowthWatcher doubles the open orders over 50 tenants four
// times, 2,500 to 40,000, and reports at each step the CPU per order of
// taking it in and polling it once (unpaced, so the figure is the work, not
// the tenant pace; hiper-sim and token-broker run in this process and
// count too) and the heap the watcher holds per open order afterwards.
// Both should stay flat: an order costs the same however many others are
// open. benchtable folds the steps into one row and a chart.
func BenchmarkGrowthWatcher(b *testing.B) {
	const tenants = 50
	for range b.N {
		for n := 2500; n <= 40000; n *= 2 {
			cpu, heap := watcherStep(b, tenants, n/tenants)
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), fmt.Sprintf("cpu-us/order@%d", n))
			b.ReportMetric(float64(heap)/1024/float64(n), fmt.Sprintf("heap-KB/order@%d", n))
		}
	}
}

// watcherStep opens perTenant orders for each of tenants tenants in a stack
// of its own, then runs a watcher until it has asked Hiper about each once;
// it returns the CPU that took and the heap (after a collection) the
// process holds beyond what it held before the watcher started.
func watcherStep(b *testing.B, tenants, perTenant int) (cpu time.Duration, heap int64) {
	names := make([]string, tenants)
	for i := range names {
		names[i] = fmt.Sprintf("shop%d", i)
	}
	step := stepscope.New(b)
	defer step.Close()
	st := brokertest.Start(step, brokertest.Options{Tenants: names, Sim: hipersim.Config{ProcessingDelay: -1}})
	as := events.NewPublisher(st.JS, st.NS, "growth", events.FormatProtobuf)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.Sim.Sim.UpsertProducts(st.Keys[name], []hiper.Product{product()}); err != nil {
				b.Error(err)
				return
			}
			batch := events.NewAsyncPublisher(st.NATS, 1024).NewBatch() // a batch is one goroutine's
			for i := range perTenant {
				orderID := fmt.Sprintf("%s-%d", name, i)
				id, err := st.Sim.Sim.CreateOrder(st.Keys[name], salesOrder(orderID))
				if err == nil {
					err = as.PublishBatch(ctx, batch, st.NS.HiperSubject(name, events.KindOrderAccepted), "accepted:"+orderID,
						&eventsv1.OrderAccepted{OrderId: orderID, HiperOrderId: id, AcceptedAt: timestamppb.Now()})
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
			if _, failures, err := batch.Wait(ctx, time.Minute); err != nil || len(failures) > 0 {
				b.Errorf("publishing %s's order.accepted: %v; %d not stored %v", name, err, len(failures), failures)
			}
		}()
	}
	testkit.Wait(b, &wg, 5*time.Minute, "the orders created and published")
	if b.Failed() {
		b.FailNow()
	}

	var polled atomic.Int64
	counting := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.Contains(r.URL.Path, "/pedido-de-venda/eventos/") {
			polled.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	n := int64(tenants * perTenant)
	heap0, cpu0 := testkit.HeapInUse(), testkit.CPUTime(b)
	w, err := watcher.Start(ctx, watcher.Deps{
		Deps: service.Deps{
			NATS: st.NATS, Namespace: st.NS, Tokens: st.Broker, HiperBaseURL: st.Sim.URL, Format: events.FormatProtobuf,
			Health: telemetry.NewHealth(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		},
		HTTPClient: &http.Client{Transport: counting},
		// Unpaced: the first poll of every order as fast as the watcher goes.
		Config: watcher.Config{TenantRate: 1e6, TenantBurst: 1e6},
	})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	testkit.WaitFor(b, 10*time.Minute, "every open order polled once", func() bool { return polled.Load() >= n })
	cpu = testkit.CPUTime(b) - cpu0
	heap = int64(testkit.HeapInUse()) - int64(heap0)
	cancel()
	if err := testkit.Recv(b, done, time.Minute, "the watcher to stop"); err != nil {
		b.Errorf("watcher: %v", err)
	}
	return cpu, heap
}

package watcher_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// BenchmarkInvoiceLatency measures, with 10,000 open orders over 50
// tenants, the time from hiper-sim registering an invoice to invoice.issued
// reaching a subscriber. Time is compressed: the schedule, the tenant pace
// and the orders' ages are those of production divided by scale, so a run
// takes a minute or two, not hours; p50-ms and p99-ms are measured as they
// are, prod-p50-s and prod-p99-s are those times multiplied back by scale.
// Open orders' ages are spread over 3 days, so most are polled at the
// ceiling, as in production. polls/s is the load on Hiper during the
// measurement, beside due-polls/s, what the schedule asks (every open
// order once a ceiling), and baseline-polls/s, polling every open order
// every 30 s (both scaled alike): polls/s well under due-polls/s is a
// replica that did not keep up, and its latencies are the machine's.
// paced/s are the turns booked on a store's pace (docs/invoices.md, "A
// store with more orders than its pace"): not zero, the booking adds to
// the latencies.
//
// The compression multiplies the polls a second the one replica must make:
// 10,000 orders expecting their invoice every 100 s are 100 polls a second,
// times scale. At 30× (3,000 a second) a 2-core machine under load made
// 500 to 1,000, and JetStream hands a consumer its redeliveries before its
// new messages: the orders polled once were polled again and again, the
// others never (the setup round stopped at 2–4k of 10,000). The figures of
// an overloaded replica would measure the machine, not the watcher: 3×
// (300 a second) leaves such a machine room.
func BenchmarkInvoiceLatency(b *testing.B) {
	const (
		tenants   = 50
		perTenant = 200
		scale     = 3
		sample    = 300
	)
	c := newCrowd(b, tenants, perTenant, 3*24*time.Hour/scale)
	h, st, orders := c.h, c.h.st, c.orders
	r := rand.New(rand.NewPCG(3, 4))

	cfg := watcher.Config{
		Schedule: order.Schedule{Min: order.DefaultMinInterval / scale, Max: order.DefaultMaxInterval / scale,
			Expect: order.DefaultExpectInterval / scale, ExpectFor: order.DefaultExpectFor / scale},
		CancelGrace: watcher.DefaultCancelGrace / scale,
		TenantRate:  watcher.DefaultTenantRate * scale,
		TenantBurst: watcher.DefaultTenantBurst * scale,
		PausedRetry: watcher.DefaultPausedRetry / scale,
		RetryDelay:  watcher.DefaultRetryDelay / scale,
	}
	w := h.start("bench", cfg)
	c.waitAllPolled(cfg)
	paced := func() float64 { return w.counter("hipersync_invoice_watch_waits_total", "reason", "paced") }

	var recvMu sync.Mutex
	received := map[string]time.Time{}
	sub, err := st.NATS.Subscribe(st.NS.HiperSubject("*", events.KindInvoiceIssued), func(m *nats.Msg) {
		at := time.Now()
		recvMu.Lock()
		received[m.Header.Get(events.HeaderSubject)] = at
		recvMu.Unlock()
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()

	var latencies []time.Duration
	var polls, booked, elapsed float64
	r.Shuffle(len(orders), func(i, j int) { orders[i], orders[j] = orders[j], orders[i] })
	next := 0
	b.ResetTimer()
	for range b.N {
		batch := orders[next:min(next+sample, len(orders))]
		next += len(batch)
		// Invoices arrive at random moments over two ceilings, so each
		// meets its order at a random point of its polling cycle.
		window := 2 * cfg.Schedule.WithDefaults().Expect
		offsets := make([]time.Duration, len(batch))
		for i := range offsets {
			offsets[i] = time.Duration(r.Int64N(int64(window)))
		}
		slices.Sort(offsets)
		registered := make(map[string]time.Time, len(batch))
		callsBefore, pacedBefore := h.calls.sum(), paced()
		start := time.Now()
		for i, o := range batch {
			time.Sleep(time.Until(start.Add(offsets[i])))
			if err := st.Sim.Sim.AddOrderEvent(st.Keys[o.tenant], o.hiperID, invoiceEvent(fmt.Sprint(i+1))); err != nil {
				b.Fatal(err)
			}
			registered[o.orderID] = time.Now()
		}
		// Each invoice is found within a ceiling of its order's polls, on
		// a machine that keeps up: the wait fails only when none of those
		// left is published for two ceilings.
		c.untilAll(len(registered), 2*cfg.Schedule.WithDefaults().Expect, "sampled invoices published", func() int {
			recvMu.Lock()
			defer recvMu.Unlock()
			n := 0
			for id := range registered {
				if _, ok := received[id]; ok {
					n++
				}
			}
			return n
		})
		polls += float64(h.calls.sum() - callsBefore)
		booked += paced() - pacedBefore
		elapsed += time.Since(start).Seconds()
		recvMu.Lock()
		for id, at := range registered {
			latencies = append(latencies, received[id].Sub(at))
		}
		recvMu.Unlock()
	}
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[min(int(p*float64(len(latencies))), len(latencies)-1)] }
	p50, p99 := pct(0.50), pct(0.99)
	b.ReportMetric(float64(p50)/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99-ms")
	b.ReportMetric((p50 * scale).Seconds(), "prod-p50-s")
	b.ReportMetric((p99 * scale).Seconds(), "prod-p99-s")
	b.ReportMetric(polls/elapsed, "polls/s")
	b.ReportMetric(float64(len(orders))/cfg.Schedule.WithDefaults().Expect.Seconds(), "due-polls/s")
	b.ReportMetric(booked/elapsed, "paced/s")
	b.ReportMetric(float64(len(orders))/(30*time.Second/scale).Seconds(), "baseline-polls/s")
}

// openOrder is one order a crowd follows.
type openOrder struct{ tenant, orderID, hiperID string }

// crowd is a stack with many open orders: perTenant orders for each of
// tenants tenants, accepted at ages spread evenly over spread. Each order is
// created in hiper-sim at its age, so that Hiper's dates (processed when
// created) agree with its acceptance.
type crowd struct {
	h      *harness
	orders []openOrder
}

func newCrowd(tb testing.TB, tenants, perTenant int, spread time.Duration) *crowd {
	tb.Helper()
	names := make([]string, tenants)
	for i := range names {
		names[i] = fmt.Sprintf("shop%d", i)
	}
	var simOffset atomic.Int64
	st := brokertest.Start(tb, brokertest.Options{Tenants: names, Sim: hipersim.Config{ProcessingDelay: -1,
		Now: func() time.Time { return time.Now().Add(time.Duration(simOffset.Load())) }}})
	c := &crowd{h: &harness{t: tb, st: st, calls: newHiperCalls(), as: events.NewPublisher(st.JS, st.NS, "crowd", events.FormatProtobuf)}}
	ctx := context.Background()
	sessions := map[string]*hiper.Session{}
	for _, name := range names {
		if err := st.Sim.Sim.UpsertProducts(st.Keys[name], []hiper.Product{product()}); err != nil {
			tb.Fatal(err)
		}
		client, err := hiper.New(st.Sim.URL)
		if err != nil {
			tb.Fatal(err)
		}
		sessions[name] = client.Session(hiper.NewKeySource(client, st.Keys[name]))
	}
	r := rand.New(rand.NewPCG(1, 2))
	batch := events.NewAsyncPublisher(st.NATS, 1024).NewBatch()
	for i := range perTenant {
		for _, name := range names {
			age := time.Duration(r.Int64N(int64(spread)))
			simOffset.Store(int64(-age))
			o := openOrder{tenant: name, orderID: fmt.Sprintf("%s-%d", name, i)}
			id, err := sessions[name].CreateSalesOrder(ctx, salesOrder(o.orderID))
			if err != nil {
				tb.Fatal(err)
			}
			o.hiperID = id
			c.orders = append(c.orders, o)
			if err := c.h.as.PublishBatch(ctx, batch, st.NS.HiperSubject(name, events.KindOrderAccepted), "accepted:"+o.orderID,
				&eventsv1.OrderAccepted{OrderId: o.orderID, HiperOrderId: id, AcceptedAt: timestamppb.New(time.Now().Add(-age))}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	simOffset.Store(0)
	if _, failures, err := batch.Wait(ctx, time.Minute); err != nil || len(failures) > 0 {
		tb.Fatalf("publishing order.accepted: %v; %d not stored %v", err, len(failures), failures)
	}
	return c
}

// waitAllPolled waits until every order has been asked about once. The
// round's length is the machine's (a loaded one polls slower), so it is not
// bounded as a whole: it fails when, with orders not yet asked about, none
// is asked about for the first time within what cfg allows one to wait —
// the first order turned away by its tenant's pace has booked the pace's
// next call, and a due order waits for its turn at most the schedule's
// ceiling.
func (c *crowd) waitAllPolled(cfg watcher.Config) {
	c.h.t.Helper()
	sch := cfg.Schedule.WithDefaults()
	rate := cfg.TenantRate
	if rate <= 0 {
		rate = watcher.DefaultTenantRate
	}
	stall := sch.Max + sch.Min + time.Duration(float64(time.Second)/rate)
	c.untilAll(len(c.orders), stall, "open orders polled once", func() int {
		c.h.calls.mu.Lock()
		defer c.h.calls.mu.Unlock()
		return len(c.h.calls.total)
	})
}

// untilAll waits until count reaches total, however long that takes while
// it grows: it fails when count does not grow for stall. The failure says
// how many calls Hiper had meanwhile, to tell a stuck watcher from one too
// busy polling the same orders again.
func (c *crowd) untilAll(total int, stall time.Duration, what string, count func() int) {
	c.h.t.Helper()
	for seen := count(); seen < total; seen = count() {
		calls := c.h.calls.sum()
		if !testkit.Until(stall, func() bool { return count() > seen }) {
			c.h.t.Fatalf("%d of %d %s; none more within %s (%d calls to Hiper meanwhile)", seen, total, what, stall, c.h.calls.sum()-calls)
		}
	}
}

package order

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
)

// A life is one order in a simulation: when it was accepted and when Hiper
// registers each of its events, in production time relative to the start
// of the measurement (negative: before it); an event whose has* field is
// false never comes.
type life struct {
	accepted, processed, separated, invoiced, shipped time.Duration
	hasProcessed, hasSeparated, hasInvoice, hasShip   bool
}

// simulation is what simulate measured over a window.
type simulation struct {
	waits []time.Duration // from each invoice registered in the window to the poll that saw it
	calls int             // polls in the window
	// openTime is the time the orders spent open (accepted, not yet invoiced
	// and shipped) in the window: polling each every 30 s costs
	// openTime ÷ 30 s.
	openTime time.Duration
	open     int // orders open at the window's start
}

// simulate runs s over lives as the watcher does, jitter (seeded by r) and
// the alignment of each turn's end to the watcher's quantum included: the
// first poll Min after acceptance, each next one at the interval from the
// record as that poll leaves it (the newest event seen is the last change;
// invoiced and stock-separated orders are marked as published), until the
// order is final or the window ends. No network, queue or Hiper time.
func simulate(s Schedule, lives []life, window time.Duration, r *rand.Rand) simulation {
	quantum := min(s.Max/48, 5*time.Second)
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var sim simulation
	for _, l := range lives {
		end := window
		if l.hasInvoice && l.hasShip {
			end = min(end, max(l.invoiced, l.shipped))
		}
		if l.accepted <= 0 && end > 0 {
			sim.open++
		}
		if lo := max(l.accepted, 0); end > lo {
			sim.openTime += end - lo
		}
		if end < -10*time.Minute {
			// Final long before the window: its last poll, at most a
			// jittered ceiling and a quantum after its last event, too.
			continue
		}
		rec := &Record{AcceptedAt: epoch.Add(l.accepted), ChangedAt: epoch.Add(l.accepted)}
		seen := func(has bool, at, t time.Duration) bool {
			if !has || at > t {
				return false
			}
			rec.ChangedAt = maxTime(rec.ChangedAt, epoch.Add(at))
			return true
		}
		var invoiceSeen, shipSeen bool
		for t := l.accepted + s.Min; t < window; {
			if t >= 0 {
				sim.calls++
			}
			seen(l.hasProcessed, l.processed, t)
			if seen(l.hasSeparated, l.separated, t) {
				rec.MarkPublished(processingMark(StageStockSeparated), epoch)
			}
			if !invoiceSeen && seen(l.hasInvoice, l.invoiced, t) {
				invoiceSeen = true
				rec.MarkPublished(events.KindInvoiceIssued, epoch)
				if l.invoiced >= 0 {
					sim.waits = append(sim.waits, t-l.invoiced)
				}
			}
			shipSeen = shipSeen || seen(l.hasShip, l.shipped, t)
			if invoiceSeen && shipSeen {
				break
			}
			now := epoch.Add(t)
			d := s.jitter(s.Interval(now.Sub(rec.ChangedAt), s.Expecting(rec, now)), r.Float64())
			t = ceilTo(t+d, quantum)
		}
	}
	slices.Sort(sim.waits)
	return sim
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ceilTo rounds d up to a multiple of q.
func ceilTo(d, q time.Duration) time.Duration {
	if q <= 0 {
		return d
	}
	return time.Duration(math.Ceil(float64(d)/float64(q))) * q
}

// logUniform draws between lo and hi, log-uniformly: as many draws between
// 10 and 20 minutes as between 10 and 20 hours.
func logUniform(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return time.Duration(math.Exp(math.Log(float64(lo)) + r.Float64()*(math.Log(float64(hi))-math.Log(float64(lo)))))
}

// lifecycle is the model of an order's life this package has documented
// since the schedule was written (docs/invoices.md, "The polling
// schedule"): processed a minute after acceptance, invoiced 10 minutes to
// 2 days later and handed to the carrier 30 minutes to 3 days after that,
// each log-uniform (most orders move within hours, a few take days).
// invoice and carrier replace those two spans for the sensitivity runs.
type lifecycle struct {
	invoiceLo, invoiceHi, carrierLo, carrierHi time.Duration
}

var documentedLives = lifecycle{10 * time.Minute, 48 * time.Hour, 30 * time.Minute, 72 * time.Hour}

// draw draws one life accepted at acc.
func (m lifecycle) draw(r *rand.Rand, acc time.Duration) life {
	inv := acc + time.Minute + logUniform(r, m.invoiceLo, m.invoiceHi)
	return life{
		accepted: acc, processed: acc + time.Minute, invoiced: inv, shipped: inv + logUniform(r, m.carrierLo, m.carrierHi),
		hasProcessed: true, hasInvoice: true, hasShip: true,
	}
}

// steady draws the lives of a steady state with about open orders open at
// the window's start: orders accepted at a constant rate from long enough
// before the window that every life that can reach it is there, and during
// it.
func (m lifecycle) steady(r *rand.Rand, open int, window time.Duration) []life {
	longest := time.Minute + m.invoiceHi + m.carrierHi
	var mean time.Duration
	const probe = 10_000
	for range probe {
		l := m.draw(r, 0)
		mean += l.shipped / probe
	}
	n := int(float64(open) * float64(longest+window) / float64(mean))
	lives := make([]life, n)
	for i := range lives {
		lives[i] = m.draw(r, -longest+time.Duration(r.Int64N(int64(longest+window))))
	}
	return lives
}

// memoryless is the model BenchmarkScheduleLatency measured first: 10,000
// open orders accepted (their last change) at moments spread evenly over 3
// days, 3,000 of them invoiced at random moments of one hour, whatever
// their age; none ships within the hour.
func memoryless(r *rand.Rand) ([]life, time.Duration) {
	const (
		orders   = 10_000
		invoiced = 3_000
		spread   = 72 * time.Hour
		window   = time.Hour
	)
	lives := make([]life, orders)
	for i := range lives {
		lives[i].accepted = -time.Duration(r.Int64N(int64(spread)))
	}
	for _, i := range r.Perm(orders)[:invoiced] {
		lives[i].invoiced, lives[i].hasInvoice = time.Duration(r.Int64N(int64(window))), true
	}
	return lives, window
}

// previousSchedule is the default before the invoice ceiling: one 3-minute
// ceiling for every order.
var previousSchedule = Schedule{Max: 3 * time.Minute, Expect: 3 * time.Minute}.WithDefaults()

// BenchmarkScheduleLatency simulates the schedule alone (no network, queue
// or Hiper time; jitter and the watcher's alignment included) over about
// 10,000 open orders in steady state, under each model of when invoices
// come, and reports how long each invoice waits for the poll that sees it
// and the calls a second, beside polling every open order every 30 s.
// Every model runs the default schedule and the previous one (a single
// 3-minute ceiling). The figures depend on the schedule and the model
// alone, not on the machine: the runs are seeded.
//
//   - memoryless: every open order, whatever its age or state, is as likely
//     to be invoiced at any moment (3,000 of 10,000 in an hour). No
//     schedule can do better than polling every order alike, so at 0.2×
//     the calls the p99 is at least 148 s (docs/invoices.md).
//   - lifecycle: the documented lives (lifecycle), orders accepted at a
//     steady rate, 12 hours measured; an invoiced order waits only for the
//     carrier.
//   - lifecycle-carrier-fast (the carrier 10 minutes to a day after the
//     invoice: fewer invoiced orders among the open ones) and
//     lifecycle-invoice-slow (invoices 30 minutes to 5 days after
//     acceptance: some beyond the schedule's 3 days): what the schedule
//     costs or loses when the lives are not those documented.
func BenchmarkScheduleLatency(b *testing.B) {
	const window = 12 * time.Hour
	models := []struct {
		name  string
		lives func(r *rand.Rand) ([]life, time.Duration)
	}{
		{"memoryless", memoryless},
		{"lifecycle", func(r *rand.Rand) ([]life, time.Duration) { return documentedLives.steady(r, 10_000, window), window }},
		{"lifecycle-carrier-fast", func(r *rand.Rand) ([]life, time.Duration) {
			return lifecycle{10 * time.Minute, 48 * time.Hour, 10 * time.Minute, 24 * time.Hour}.steady(r, 10_000, window), window
		}},
		{"lifecycle-invoice-slow", func(r *rand.Rand) ([]life, time.Duration) {
			return lifecycle{30 * time.Minute, 120 * time.Hour, 30 * time.Minute, 72 * time.Hour}.steady(r, 10_000, window), window
		}},
	}
	schedules := []struct {
		name string
		s    Schedule
	}{{"default", Schedule{}.WithDefaults()}, {"previous", previousSchedule}}
	for _, m := range models {
		for _, sc := range schedules {
			b.Run(m.name+"/"+sc.name, func(b *testing.B) {
				var sim simulation
				var w time.Duration
				for b.Loop() {
					lives, win := m.lives(rand.New(rand.NewPCG(17, 17)))
					sim, w = simulate(sc.s, lives, win, rand.New(rand.NewPCG(6, 6))), win
				}
				pct := func(p float64) float64 { return sim.waits[int(p*float64(len(sim.waits)-1))].Seconds() }
				b.ReportMetric(pct(0.50), "p50-s")
				b.ReportMetric(pct(0.99), "p99-s")
				b.ReportMetric(float64(sim.calls)/w.Seconds(), "calls/s")
				b.ReportMetric(sim.openTime.Seconds()/30/w.Seconds(), "baseline-calls/s")
				b.ReportMetric(float64(sim.open), "open-orders")
				b.ReportMetric(float64(len(sim.waits)), "invoices")
			})
		}
	}
}

// BenchmarkCallsPerOrder counts the Hiper calls the default schedule makes
// over each of 10,000 documented lives (until its shipping is seen), beside
// polling the order every 30 s for the same life.
func BenchmarkCallsPerOrder(b *testing.B) {
	s := Schedule{}.WithDefaults()
	r := rand.New(rand.NewPCG(6, 6))
	lives := make([]life, 10_000)
	var baseline float64
	for i := range lives {
		lives[i] = documentedLives.draw(r, 0)
		baseline += math.Ceil(float64(lives[i].shipped) / float64(30*time.Second))
	}
	var sim simulation
	for b.Loop() {
		sim = simulate(s, lives, math.MaxInt64/2, rand.New(rand.NewPCG(7, 7)))
	}
	b.ReportMetric(float64(sim.calls)/float64(len(lives)), "calls/order")
	b.ReportMetric(baseline/float64(len(lives)), "baseline-calls/order")
}

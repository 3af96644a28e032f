package order

import (
	"math/rand/v2"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
)

// Defaults of a Schedule.
const (
	DefaultMinInterval = 30 * time.Second
	// DefaultExpectInterval is the ceiling while an invoice is expected:
	// with its ±10 % jitter and the watcher's alignment (at most 5 s) no
	// poll of such an order is more than 115 s after the one before, so an
	// invoice waits at most that long for the poll that sees it (issue #17:
	// 120 s at p99).
	DefaultExpectInterval = 100 * time.Second
	// DefaultExpectFor is how long after its acceptance an order that
	// Hiper has not invoiced is polled at the invoice ceiling: the
	// documented lives (docs/invoices.md, "The polling schedule") are
	// invoiced within 2 days; 3 days leaves a weekend's margin.
	DefaultExpectFor = 72 * time.Hour
	// DefaultMaxInterval is the ceiling of an order from which no invoice
	// is expected soon (invoiced and waiting for the carrier, or older than
	// DefaultExpectFor): it bounds how late a shipping or a cancellation is
	// seen, and most open orders are polled at it.
	DefaultMaxInterval = 5 * time.Minute
	// DefaultBackoff makes the interval an eighth of the time since the
	// last change: 30 s for the first 4 minutes, the invoice ceiling from
	// the 13th, 5 minutes from the 40th.
	DefaultBackoff = 0.125
	DefaultJitter  = 0.1
)

// Schedule is how often an order is polled: often while Hiper's answer is
// fresh (just accepted, or just changed: processed, invoiced…), because
// that is when the next change is most likely, then less and less often up
// to a ceiling that bounds how late any change is seen. The ceiling is
// lower while the order's invoice is expected (Expecting): the invoice is
// what the store waits for, and an invoiced order, whose invoice can no
// longer come, spends the calls its invoice would need.
type Schedule struct {
	// Min is the interval while the order is young (default 30s).
	Min time.Duration
	// Expect is the ceiling while the order's invoice is expected (default
	// 100s, at most Max).
	Expect time.Duration
	// ExpectFor is how long after its acceptance an order not invoiced is
	// expecting its invoice, unless Hiper shows its stock separated
	// (default 72h).
	ExpectFor time.Duration
	// Max is the ceiling otherwise (default 5m): a shipping or a
	// cancellation is seen at most that long after Hiper registers it,
	// about half of it on average.
	Max time.Duration
	// Backoff is the interval as a fraction of the time since the last
	// change, between Min and the ceiling (default 1/8).
	Backoff float64
	// Jitter spreads each interval by up to ± this fraction (default 0.1),
	// so orders accepted together do not stay in step.
	Jitter float64
}

// WithDefaults fills the unset fields.
func (s Schedule) WithDefaults() Schedule {
	if s.Min <= 0 {
		s.Min = DefaultMinInterval
	}
	if s.Max <= 0 {
		s.Max = DefaultMaxInterval
	}
	s.Max = max(s.Max, s.Min)
	if s.Expect <= 0 {
		s.Expect = DefaultExpectInterval
	}
	s.Expect = min(max(s.Expect, s.Min), s.Max)
	if s.ExpectFor <= 0 {
		s.ExpectFor = DefaultExpectFor
	}
	if s.Backoff <= 0 {
		s.Backoff = DefaultBackoff
	}
	if s.Jitter < 0 || s.Jitter >= 1 {
		s.Jitter = DefaultJitter
	}
	return s
}

// Expecting reports whether r's invoice is expected: Hiper has not shown
// it yet, and the order was accepted less than ExpectFor ago or Hiper shows
// its stock separated (event 2, the step before the invoice).
func (s Schedule) Expecting(r *Record, now time.Time) bool {
	if r.IsPublished(events.KindInvoiceIssued) {
		return false
	}
	return now.Sub(r.AcceptedAt) < s.ExpectFor || r.IsPublished(processingMark(StageStockSeparated))
}

// Interval is the time to the next poll of an order whose answer last
// changed sinceChange ago, without jitter; expecting is whether its
// invoice is expected (Expecting).
func (s Schedule) Interval(sinceChange time.Duration, expecting bool) time.Duration {
	ceiling := s.Max
	if expecting {
		ceiling = s.Expect
	}
	d := time.Duration(float64(max(sinceChange, 0)) * s.Backoff)
	return min(max(d, s.Min), ceiling)
}

// Next is the interval to r's next poll as of now, with jitter.
func (s Schedule) Next(r *Record, now time.Time) time.Duration {
	return s.jitter(s.Interval(now.Sub(r.ChangedAt), s.Expecting(r, now)), rand.Float64())
}

// jitter spreads d by u, a number in [0, 1): 0.5 leaves it as it is.
func (s Schedule) jitter(d time.Duration, u float64) time.Duration {
	if s.Jitter == 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + s.Jitter*(2*u-1)))
}

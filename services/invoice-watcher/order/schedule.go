package order

import (
	"math/rand/v2"
	"time"
)

// Defaults of a Schedule.
const (
	DefaultMinInterval = 30 * time.Second
	// DefaultMaxInterval is the ceiling: with most open orders old, it
	// sets both how late an invoice is seen (p99 about the ceiling and its
	// jitter) and Hiper's load (open orders ÷ ceiling, plus the polls of
	// orders that just changed). 3 minutes spends what issue #17 allows, a
	// fifth of the calls of polling every order every 30 s, on the smallest
	// delay that budget buys (BenchmarkScheduleLatency).
	DefaultMaxInterval = 3 * time.Minute
	// DefaultBackoff makes the interval an eighth of the time since the
	// last change: 30 s for the first 4 minutes, 3 minutes from the 24th.
	DefaultBackoff = 0.125
	DefaultJitter  = 0.1
)

// Schedule is how often an order is polled: often while Hiper's answer is
// fresh (just accepted, or just changed: processed, invoiced…), because
// that is when the next change is most likely, then less and less often up
// to a ceiling that bounds how late any change is seen.
type Schedule struct {
	// Min is the interval while the order is young (default 30s).
	Min time.Duration
	// Max is the ceiling (default 3m): a change is seen at most that long
	// after Hiper registers it, about half of it on average.
	Max time.Duration
	// Backoff is the interval as a fraction of the time since the last
	// change, between Min and Max (default 1/8).
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
	if s.Backoff <= 0 {
		s.Backoff = DefaultBackoff
	}
	if s.Jitter < 0 || s.Jitter >= 1 {
		s.Jitter = DefaultJitter
	}
	return s
}

// Interval is the time to the next poll of an order whose answer last
// changed sinceChange ago, without jitter.
func (s Schedule) Interval(sinceChange time.Duration) time.Duration {
	d := time.Duration(float64(max(sinceChange, 0)) * s.Backoff)
	return min(max(d, s.Min), s.Max)
}

// Next is Interval with jitter.
func (s Schedule) Next(sinceChange time.Duration) time.Duration {
	d := s.Interval(sinceChange)
	if s.Jitter == 0 {
		return d
	}
	f := 1 + s.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// Calls counts the polls the schedule makes over an order's life: from its
// acceptance until every time in changes has been seen (each change, once
// seen, makes the backoff start again from its time, as Observe records it),
// without jitter. It is what the benchmark
// compares with polling every order at a fixed interval.
func (s Schedule) Calls(changes []time.Duration) int {
	var end time.Duration
	for _, c := range changes {
		end = max(end, c)
	}
	calls, prev, changed, t := 0, time.Duration(0), time.Duration(0), s.Min
	for {
		calls++
		if t >= end {
			return calls
		}
		for _, c := range changes {
			if prev < c && c <= t {
				changed = max(changed, c)
			}
		}
		prev, t = t, t+s.Interval(t-changed)
	}
}

package watcher_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
)

// A store with more orders due than its pace allows: each order takes its
// turn, first come, first served, and is polled within the bound
// docs/invoices.md states ("A store with more orders than its pace"): the
// schedule's interval with its jitter and alignment, then the store's
// orders ÷ its pace and the alignment again. 40 orders expect their invoice and want a
// poll every second; the store may make 10 calls a second per replica
// without a burst, so they queue for 4 s. The quantum (half a second)
// spans five calls: the turns must survive the rounding of the tasks'
// delays. With two replicas each one books on its own pace and either
// may hold the order's turn.
func TestPacedOrdersTakeTurns(t *testing.T) {
	t.Parallel()
	for _, replicas := range []int{1, 2} {
		t.Run(fmt.Sprintf("replicas=%d", replicas), func(t *testing.T) {
			t.Parallel()
			const (
				n     = 40
				rate  = 10
				polls = 5 // each order's polls watched
			)
			h := newHarness(t)
			cfg := fast()
			// Max only sets the quantum: Max/48, half a second. Orders
			// expecting their invoice are polled at Expect.
			cfg.Schedule = order.Schedule{Min: time.Second, Expect: time.Second, Max: 24 * time.Second}
			cfg.TenantRate, cfg.TenantBurst = rate, 1
			var started []*replica
			for i := range replicas {
				started = append(started, h.start(fmt.Sprint("r", i), cfg))
			}
			sch := cfg.Schedule.WithDefaults()
			quantum := sch.Max / 48
			queue := time.Duration(n) * time.Second / rate
			// The bound, and the room a loaded machine needs for a poll
			// (the Hiper call, the record, the task's settle).
			// The interval ends on a quantum's mark, the order's
			// turn on the next after its queue.
			bound := time.Duration(float64(sch.Expect)*(1+sch.Jitter)) + quantum + queue + quantum
			slack := 2 * time.Second
			accepted := time.Now()
			ids := make([]string, n)
			for i := range n {
				ids[i] = h.newOrder(fmt.Sprint(9000 + i))
			}
			// Not WaitFor: an order left behind is reported with its gap.
			testkit.Until(time.Duration(polls+2)*(bound+slack), func() bool {
				for _, id := range ids {
					if h.calls.of(id) < polls {
						return false
					}
				}
				return true
			})
			end := time.Now()
			worst, late := time.Duration(0), 0
			for i, id := range ids {
				prev := accepted.Add(sch.Min) // the first poll is due a Min after acceptance
				times := h.calls.times(id)
				for j := range polls {
					at := end // not polled yet
					if j < len(times) {
						at = times[j]
					}
					gap := at.Sub(prev)
					worst = max(worst, gap)
					if gap > bound+slack {
						late++
						t.Errorf("order %d: poll %d came %s after the one before (bound %s, slack %s)", 9000+i, j+1, gap.Round(time.Millisecond), bound, slack)
						break
					}
					prev = at
				}
			}
			booked := 0.0
			for _, r := range started {
				booked += r.counter("hipersync_invoice_watch_turn_wait_seconds")
			}
			if booked == 0 {
				t.Error("no order booked a turn: the store's pace never bit")
			}
			t.Logf("worst gap %s against a bound of %s (+%s slack), %d late; %d calls, %v turns booked", worst.Round(time.Millisecond), bound, slack, late, h.calls.sum(), booked)
		})
	}
}

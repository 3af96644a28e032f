package pace

import (
	"context"
	"testing"
	"time"
)

// clock is a clock a test sets.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestBookQueuesCallsOnTheInjectedClock(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_000_000, 0)}
	p := New(2, 3, c.now) // 2 a second, bursts of 3
	for i := range 3 {
		if d := p.Book("acme"); d != 0 {
			t.Fatalf("call %d of the burst waits %v", i+1, d)
		}
	}
	// Each call booked after the burst takes the next free turn: first
	// come, first served.
	for i, want := range []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond} {
		if d := p.Book("acme"); d != want {
			t.Fatalf("booked call %d waits %v, want %v", i+1, d, want)
		}
	}
	if d := p.Book("other"); d != 0 {
		t.Fatalf("another tenant waits %v: tenants share a bucket", d)
	}
	// Half a second on, the first booked turn has come: the next free one
	// is still after the last booked.
	c.t = c.t.Add(500 * time.Millisecond)
	if d := p.Book("acme"); d != 1500*time.Millisecond {
		t.Fatalf("after 500ms a new call waits %v, want 1.5s", d)
	}
	c.t = c.t.Add(10 * time.Second)
	if d := p.Book("acme"); d != 0 {
		t.Fatalf("once every turn has passed a call waits %v", d)
	}
	p.Forget("acme")
	for i := range 3 {
		if d := p.Book("acme"); d != 0 {
			t.Fatalf("a forgotten tenant's call %d waits %v", i+1, d)
		}
	}
	if d := New(0, 1, c.now).Book("acme"); d != 0 {
		t.Fatalf("no pacing: a call waits %v", d)
	}
}

func TestWaitQueuesCallersAndGivesUpWithItsContext(t *testing.T) {
	t.Parallel()
	p := New(1, 1, nil)
	ctx := t.Context()
	if err := p.Wait(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := p.Wait(short, "acme"); err == nil {
		t.Fatal("a call 1s early did not wait")
	}
	if err := New(0, 1, nil).Wait(ctx, "acme"); err != nil {
		t.Fatalf("no pacing: %v", err)
	}
}

func TestWaitSpacesCalls(t *testing.T) {
	t.Parallel()
	p := New(100, 2, nil)
	start := time.Now()
	for range 7 {
		if err := p.Wait(context.Background(), "acme"); err != nil {
			t.Fatal(err)
		}
	}
	// Two in the burst, then five at 10ms each.
	if el := time.Since(start); el < 45*time.Millisecond {
		t.Fatalf("7 calls at 100/s with a burst of 2 took %s", el)
	}
	if err := p.Wait(context.Background(), "beta"); err != nil || time.Since(start) > time.Second {
		t.Fatal("another tenant waited on acme's pace")
	}
}

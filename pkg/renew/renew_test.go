package renew_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/renew"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// Renewals go on until one says what was held is lost; none comes after.
func TestEveryStopsWhenLost(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	lost := make(chan struct{})
	stop := renew.Every(context.Background(), time.Millisecond, func(context.Context) bool {
		if calls.Add(1) == 3 {
			close(lost)
			return false
		}
		return true
	})
	testkit.Recv(t, lost, 10*time.Second, "the third renewal")
	stop() // returns at once: the loop has ended
	if n := calls.Load(); n != 3 {
		t.Errorf("%d renewals, want 3: the loop went on after the loss", n)
	}
}

// stop ends the loop and waits for it: no renewal runs after stop returns,
// and the one in progress sees its context end.
func TestEveryStopWaits(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	inside := make(chan struct{}, 1)
	cancelled := make(chan struct{})
	stop := renew.Every(context.Background(), time.Millisecond, func(ctx context.Context) bool {
		if calls.Add(1) == 1 {
			inside <- struct{}{}
			<-ctx.Done()
			close(cancelled)
		}
		return true
	})
	testkit.Recv(t, inside, 10*time.Second, "the first renewal")
	stop()
	select {
	case <-cancelled:
	default:
		t.Fatal("stop returned before the renewal in progress had ended")
	}
	after := calls.Load()
	if after != 1 {
		t.Errorf("%d renewals after stop began, want 1", after)
	}
}

package events

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/testkit"
)

var intCodec = Codec[int]{
	Encode: func(n int) ([]byte, error) { return []byte(strconv.Itoa(n)), nil },
	Decode: func(b []byte) (int, error) { return strconv.Atoi(string(b)) },
}

// counterKV is a bucket of the test's own namespace.
func counterKV(t *testing.T) (context.Context, jetstream.KeyValue) {
	e := newTestEnv(t)
	kv, err := EnsureKV(t.Context(), e.js, e.ns, "counter")
	if err != nil {
		t.Fatal(err)
	}
	return t.Context(), kv
}

// TestUpdateLosesNoWrite races writers incrementing one counter: every
// increment lands once, whoever loses a race reads again.
func TestUpdateLosesNoWrite(t *testing.T) {
	t.Parallel()
	ctx, kv := counterKV(t)
	const writers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Go(func() {
			for range each {
				if _, _, err := Update(ctx, kv, "n", intCodec, func(n int) (int, error) { return n + 1, nil }); err != nil {
					errs <- err
				}
			}
		})
	}
	testkit.Wait(t, &wg, time.Minute, "the writers")
	close(errs)
	for err := range errs {
		t.Errorf("Update: %v", err)
	}
	n, _, found, err := Get(ctx, kv, "n", intCodec)
	if err != nil || !found || n != writers*each {
		t.Fatalf("counter = %d (found %v, err %v), want %d", n, found, err, writers*each)
	}
}

func TestUpdateNoChangeAndChangeError(t *testing.T) {
	t.Parallel()
	ctx, kv := counterKV(t)
	if _, rev, err := Update(ctx, kv, "n", intCodec, func(int) (int, error) { return 0, ErrNoChange }); err != nil || rev != 0 {
		t.Fatalf("no change on a missing key: rev %d, err %v; want nothing written", rev, err)
	}
	if _, _, found, _ := Get(ctx, kv, "n", intCodec); found {
		t.Fatal("no change wrote a value")
	}
	if _, _, err := Update(ctx, kv, "n", intCodec, func(int) (int, error) { return 7, nil }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	n, _, err := Update(ctx, kv, "n", intCodec, func(int) (int, error) { return 8, boom })
	if !errors.Is(err, boom) || n != 7 {
		t.Fatalf("Update with a failing change = %d, %v; want the current 7 and the error as is", n, err)
	}
}

// TestUpdateGivesUpAfterMaxConflicts: a writer that always loses stops with
// ErrConflict instead of spinning.
func TestUpdateGivesUpAfterMaxConflicts(t *testing.T) {
	t.Parallel()
	ctx, kv := counterKV(t)
	attempts := 0
	_, _, err := Update(ctx, kv, "n", intCodec, func(n int) (int, error) {
		attempts++
		// Another writer gets there first, every time.
		if _, err := kv.Put(context.WithoutCancel(ctx), "n", []byte(strconv.Itoa(n+100))); err != nil {
			t.Fatal(err)
		}
		return n + 1, nil
	})
	if !errors.Is(err, ErrConflict) || !Conflict(err) || attempts != MaxConflicts {
		t.Fatalf("Update = %v after %d attempts; want ErrConflict after %d", err, attempts, MaxConflicts)
	}
}

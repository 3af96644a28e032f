package orders

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/natstest"
	"github.com/hipersync/hipersync/pkg/testkit"
)

func testStore(t *testing.T) (*Store, jetstream.JetStream, events.Namespace) {
	t.Helper()
	_, js := testkit.Connect(t)
	ns := events.Namespace{Prefix: testkit.Prefix(t)}
	s, err := Open(context.Background(), js, ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = js.DeleteKeyValue(ctx, ns.Bucket(Bucket))
		for _, st := range events.Streams {
			_ = js.DeleteStream(ctx, ns.Stream(st))
		}
	})
	return s, js, ns
}

// TestCompareAndSet: of two writers that read the same revision, one wins
// and the other is told, and creating twice is a conflict.
func TestCompareAndSet(t *testing.T) {
	t.Parallel()
	s, _, _ := testStore(t)
	ctx := context.Background()
	rec := &Record{Tenant: "acme", OrderID: "a.b*", State: StateReceived, CreatedAt: time.Now()}
	rev, err := s.Create(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, rec); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	a, b := *rec, *rec
	a.State, b.State = StateSending, StateCancelled
	if _, err := s.Update(ctx, &a, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, &b, rev); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	got, _, err := s.Get(ctx, "acme", "a.b*")
	if err != nil || got.State != StateSending || got.OrderID != "a.b*" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, _, err := s.Get(ctx, "acme", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing order: %v", err)
	}
	// Mutate retries through a concurrent change.
	raced := false
	_, _, err = s.Mutate(ctx, "acme", "a.b*", func(r *Record) (*Record, error) {
		if !raced {
			raced = true
			other, rev2, _ := s.Get(ctx, "acme", "a.b*")
			other.Attempts = 7
			if _, err := s.Update(ctx, other, rev2); err != nil {
				t.Fatal(err)
			}
		}
		next := *r
		next.State = StateAccepted
		return &next, nil
	})
	got, _, _ = s.Get(ctx, "acme", "a.b*")
	if err != nil || got.State != StateAccepted || got.Attempts != 7 {
		t.Fatalf("after Mutate: %+v, %v", got, err)
	}
	for _, id := range []string{"2", "3"} {
		if _, err := s.Create(ctx, &Record{Tenant: "acme", OrderID: id, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Create(ctx, &Record{Tenant: "other", OrderID: "9", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, "acme")
	if err != nil || len(list) != 3 || list[0].OrderID != "a.b*" {
		t.Fatalf("List = %d records, %v", len(list), err)
	}
}

// TestOperatorGuards: resolve and resend act only where they are safe.
func TestOperatorGuards(t *testing.T) {
	t.Parallel()
	s, js, ns := testStore(t)
	ctx := context.Background()
	if err := events.EnsureStreams(ctx, js, ns); err != nil {
		t.Fatal(err)
	}
	op := Operator{Store: s, Publisher: events.NewPublisher(js, ns, "test", events.FormatJSON), NS: ns, By: "test"}
	const hid = "34852cf6-f222-4d61-86d1-045a1aee66f4"
	mk := func(id string, st State) {
		r := &Record{Tenant: "acme", OrderID: id, State: st, CreatedAt: time.Now()}
		if err := r.SetApproval(&eventsv1.StoreOrderApproved{OrderId: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	mk("accepted", StateAccepted)
	mk("sending", StateSending)
	mk("review", StateNeedsReview)
	mk("rejected", StateRejected)
	for _, tc := range []struct {
		what string
		err  error
		want error
	}{
		{"resolve an accepted order", func() error { _, err := op.Resolve(ctx, "acme", "accepted", hid); return err }(), ErrWrongState},
		{"resolve with a bad id", func() error { _, err := op.Resolve(ctx, "acme", "review", "LV123"); return err }(), ErrInvalidHiperID},
		{"resolve a missing order", func() error { _, err := op.Resolve(ctx, "acme", "missing", hid); return err }(), ErrNotFound},
		{"resend an order being sent", func() error { _, err := op.Resend(ctx, "acme", "sending"); return err }(), ErrWrongState},
		{"resend an accepted order", func() error { _, err := op.Resend(ctx, "acme", "accepted"); return err }(), ErrWrongState},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.what, tc.err, tc.want)
		}
	}
	rec, err := op.Resend(ctx, "acme", "rejected")
	if err != nil || rec.State != StateReceived || rec.Generation != 1 {
		t.Fatalf("resend a rejected order: %+v %v", rec, err)
	}
	stream, _ := js.Stream(ctx, ns.Stream(events.StreamStore))
	msg, err := stream.GetLastMsgForSubject(ctx, ns.StoreSubject("acme", events.KindOrderApproved))
	if err != nil || msg.Header.Get(events.HeaderMsgID) != "resend.acme.rejected.1" {
		t.Fatalf("re-queued approval: %v %v", msg, err)
	}
	rec, err = op.Resolve(ctx, "acme", "review", hid)
	if err != nil || rec.State != StateAccepted || rec.HiperOrderID != hid || !rec.Outbox.Published {
		t.Fatalf("resolve: %+v %v", rec, err)
	}
}

// TestUpdateAsync: a write handed to the connection lands at the revision
// it names, loses a compare-and-set as Update does (ErrConflict, on a
// single server and on a replicated bucket, whose server reports it with
// another code), and any write issued after it returns lands behind it.
func TestUpdateAsync(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, s *Store) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rec := &Record{Tenant: "acme", OrderID: "U1", State: StateSending, CreatedAt: time.Now()}
		rev, err := s.Create(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		answered := *rec
		answered.State = StateAccepted
		wait, err := s.UpdateAsync(&answered, rev)
		if err != nil {
			t.Fatal(err)
		}
		next := &Record{Tenant: "acme", OrderID: "U2", State: StateSending, CreatedAt: time.Now()}
		nrev, err := s.Create(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		arev, err := wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if arev >= nrev {
			t.Errorf("the answer landed at %d, after the write issued behind it (%d)", arev, nrev)
		}
		if got, grev, err := s.Get(ctx, "acme", "U1"); err != nil || got.State != StateAccepted || grev != arev {
			t.Fatalf("after the write: %+v at %d, %v", got, grev, err)
		}
		stale, err := s.UpdateAsync(rec, rev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stale(ctx); !errors.Is(err, ErrConflict) {
			t.Fatalf("a stale write: %v", err)
		}
	}
	t.Run("server", func(t *testing.T) {
		t.Parallel()
		s, _, _ := testStore(t)
		check(t, s)
	})
	t.Run("replicated", func(t *testing.T) {
		t.Parallel()
		_, js, ctx := natstest.ThreeNodes(t, 2*time.Minute)
		s, err := Open(ctx, js, events.Namespace{Prefix: "async", Replicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		check(t, s)
	})
}

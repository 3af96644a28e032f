package syncstatus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/kvwatch"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Request asks for a tenant's sync to run now rather than when due. It
// waits in the requests bucket until a run serves it, so it survives a
// restart of every poller, and requests made before it runs are merged into
// one.
type Request struct {
	// ID names the request; a merge gives the result a new one.
	ID string    `json:"id"`
	At time.Time `json:"at"`
	// Full asks for a full resync: the whole feed from sync point 0,
	// publishing only what really changed.
	Full bool `json:"full,omitempty"`
	// Approve releases a change the guardrail holds.
	Approve bool `json:"approve,omitempty"`
	// Products asks the stock poller to refresh these products' stock from
	// the stock endpoint, one call each.
	Products []string `json:"products,omitempty"`
	// Unlink (catalog): forget that the store has these products, so the
	// run (a full one) publishes them anew, as created.
	Unlink []string `json:"unlink,omitempty"`
	// Reset (catalog): publish every product anew, as created, in a full
	// run; above the guardrail's minimum catalogue it waits for approval.
	Reset bool `json:"reset,omitempty"`
}

// ErrNoSuchSync is returned by WaitServed when the status disappears.
var ErrNoSuchSync = errors.New("no such sync")

// RequestSync asks tenant's sync of kind k to run now, merged with any
// request not yet served, and returns the request as stored.
func RequestSync(ctx context.Context, js jetstream.JetStream, ns events.Namespace, tenantID string, k Kind, r Request) (Request, error) {
	if err := tenant.ValidID(tenantID); err != nil {
		return Request{}, fmt.Errorf("request sync: %w", err)
	}
	if !k.Valid() {
		return Request{}, fmt.Errorf("request sync: unknown kind %q", k)
	}
	kv, err := bucket(ctx, js, ns, RequestBucket)
	if err != nil {
		return Request{}, fmt.Errorf("request sync: %w", err)
	}
	stored, _, err := events.Update(ctx, kv, StatusKey(tenantID, k), requestCodec, func(old *Request) (*Request, error) {
		merged := r
		merged.ID = newID()
		merged.At = time.Now().UTC()
		if old != nil {
			merged.Full = merged.Full || old.Full
			merged.Approve = merged.Approve || old.Approve
			merged.Products = union(old.Products, merged.Products)
			merged.Unlink = union(old.Unlink, merged.Unlink)
			merged.Reset = merged.Reset || old.Reset
		}
		return &merged, nil
	})
	if err != nil {
		return Request{}, fmt.Errorf("request sync: %w", err)
	}
	return *stored, nil
}

// requestCodec is how a Request is stored. A request that does not decode
// is replaced: merging with it keeps nothing of it.
var requestCodec = events.Codec[*Request]{
	Encode: func(r *Request) ([]byte, error) { return json.Marshal(r) },
	Decode: func(b []byte) (*Request, error) {
		var r Request
		if json.Unmarshal(b, &r) != nil {
			return &Request{}, nil
		}
		return &r, nil
	},
}

// WaitServed waits until a run that started after r was made finished, and
// returns the status it left. The run may have failed (Status.LastError,
// LastErrorAt after r.At): the request then stays, and is retried with the
// run's backoff.
func WaitServed(ctx context.Context, js jetstream.JetStream, ns events.Namespace, tenantID string, k Kind, r Request) (Status, error) {
	kv, err := bucket(ctx, js, ns, StatusBucket)
	if err != nil {
		return Status{}, fmt.Errorf("wait for sync: %w", err)
	}
	// The watch survives the NATS server it lives on (kvwatch).
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	entries := make(chan jetstream.KeyValueEntry, 16)
	_, err = kvwatch.Start(wctx, kv, kvwatch.Config{Keys: []string{StatusKey(tenantID, k)}, JS: js,
		Entry: func(e jetstream.KeyValueEntry) {
			select {
			case entries <- e:
			case <-wctx.Done():
			}
		}})
	if err != nil {
		return Status{}, fmt.Errorf("watch sync status: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return Status{}, ctx.Err()
		case e := <-entries:
			if e.Operation() != jetstream.KeyValuePut {
				return Status{}, ErrNoSuchSync
			}
			s, err := Decode(e.Value())
			if err != nil {
				return Status{}, err
			}
			if s.Lease != nil {
				continue // running
			}
			served := !s.LastRequestAt.Before(r.At)
			failed := !s.LastErrorAt.Before(r.At) && !s.LastRunAt.Before(r.At)
			if served || failed {
				return s, nil
			}
		}
	}
}

// bucket opens one of the schedule's buckets, provisioning them when they do
// not exist yet (no poller ever ran): a request made first is not lost.
func bucket(ctx context.Context, js jetstream.JetStream, ns events.Namespace, name string) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := events.Retry(ctx, "open "+ns.Bucket(name), func(ctx context.Context) error {
		var err error
		kv, err = js.KeyValue(ctx, ns.Bucket(name))
		return err
	})
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	status, requests, err := EnsureBuckets(ctx, js, ns)
	if name == StatusBucket {
		return status, err
	}
	return requests, err
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, v := range b {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

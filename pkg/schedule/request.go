package schedule

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
	if err := events.ValidTenant(tenantID); err != nil {
		return Request{}, fmt.Errorf("request sync: %w", err)
	}
	if !k.Valid() {
		return Request{}, fmt.Errorf("request sync: unknown kind %q", k)
	}
	kv, err := bucket(ctx, js, ns, RequestBucket)
	if err != nil {
		return Request{}, fmt.Errorf("request sync: %w", err)
	}
	key := StatusKey(tenantID, k)
	for {
		merged := r
		merged.ID = newID()
		merged.At = time.Now().UTC()
		prev, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			b, _ := json.Marshal(merged)
			if _, err := kv.Create(ctx, key, b); errors.Is(err, jetstream.ErrKeyExists) {
				continue // another request landed first: merge with it
			} else if err != nil {
				return Request{}, fmt.Errorf("request sync of %s: %w", key, err)
			}
			return merged, nil
		case err != nil:
			return Request{}, fmt.Errorf("request sync of %s: %w", key, err)
		}
		var old Request
		if json.Unmarshal(prev.Value(), &old) == nil {
			merged.Full = merged.Full || old.Full
			merged.Approve = merged.Approve || old.Approve
			merged.Products = union(old.Products, merged.Products)
			merged.Unlink = union(old.Unlink, merged.Unlink)
			merged.Reset = merged.Reset || old.Reset
		}
		b, _ := json.Marshal(merged)
		if _, err := kv.Update(ctx, key, b, prev.Revision()); err != nil {
			if isWrongRevision(err) {
				continue
			}
			return Request{}, fmt.Errorf("request sync of %s: %w", key, err)
		}
		return merged, nil
	}
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
	w, err := kv.Watch(ctx, StatusKey(tenantID, k))
	if err != nil {
		return Status{}, fmt.Errorf("watch sync status: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return Status{}, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return Status{}, errors.New("watch sync status: closed")
			}
			if e == nil {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				return Status{}, ErrNoSuchSync
			}
			s, err := decodeStatus(e.Value())
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
	kv, err := js.KeyValue(ctx, ns.Bucket(name))
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

// isWrongRevision reports whether a KV compare-and-set lost to another
// writer.
func isWrongRevision(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

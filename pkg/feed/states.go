package feed

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// loadConcurrency bounds the parallel reads of Load.
const loadConcurrency = 16

// States is one tenant's product states as a run sees them: read from the
// poller's bucket once, then changed in memory as the run decides; the
// bucket is written by the Sink, after the events. Not safe for concurrent
// use.
type States struct {
	kv     jetstream.KeyValue
	tenant string
	// m holds what is known: a product's state, or nil when the bucket has
	// none. complete means every state of the tenant is in m.
	m        map[string][]byte
	complete bool
}

// NewStates returns the states of tenant in kv.
func NewStates(kv jetstream.KeyValue, tenantID string) *States {
	return &States{kv: kv, tenant: tenantID, m: map[string][]byte{}}
}

// Key is the bucket key of a tenant's product.
func Key(tenantID, productID string) string { return tenantID + "." + productID }

// Bucket is the (namespaced) name of the bucket the states live in.
func (s *States) Bucket() string { return s.kv.Bucket() }

// Preload reads every state of the tenant at once, for a run that will look
// at most of them (the initial sync, a full resync): one ordered stream read
// instead of a request per product.
func (s *States) Preload(ctx context.Context) error {
	w, err := s.kv.Watch(ctx, s.tenant+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read product states: %w", err)
	}
	defer func() { _ = w.Stop() }()
	prefix := len(s.tenant) + 1
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("read product states: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("read product states: watch closed")
			}
			if e == nil {
				s.complete = true
				return nil
			}
			s.m[e.Key()[prefix:]] = e.Value()
		}
	}
}

// Load reads the states of ids not known yet, in parallel.
func (s *States) Load(ctx context.Context, ids []string) error {
	if s.complete {
		return nil
	}
	var missing []string
	for _, id := range ids {
		if _, ok := s.m[id]; !ok {
			missing = append(missing, id)
			s.m[id] = nil // also dedups ids
		}
	}
	if len(missing) == 0 {
		return nil
	}
	got := make([][]byte, len(missing))
	errs := make([]error, len(missing))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(loadConcurrency, len(missing)) {
		wg.Go(func() {
			for i := range next {
				e, err := s.kv.Get(ctx, Key(s.tenant, missing[i]))
				switch {
				case errors.Is(err, jetstream.ErrKeyNotFound):
				case err != nil:
					errs[i] = err
				default:
					got[i] = e.Value()
				}
			}
		})
	}
	for i := range missing {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, id := range missing {
			delete(s.m, id)
		}
		return fmt.Errorf("read product states: %w", err)
	}
	for i, id := range missing {
		if got[i] != nil {
			s.m[id] = got[i]
		}
	}
	return nil
}

// Get returns a product's state; ok is false when it has none (or it was
// not loaded).
func (s *States) Get(productID string) (state []byte, ok bool) {
	v := s.m[productID]
	return v, v != nil
}

// Set records a product's new state for the rest of the run; the Sink
// writes it to the bucket.
func (s *States) Set(productID string, state []byte) { s.m[productID] = state }

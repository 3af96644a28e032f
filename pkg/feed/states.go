package feed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hiper"
)

// loadConcurrency bounds the parallel reads of Load.
const loadConcurrency = 16

// preloadQuiet is how long Preload waits for the next record.
const preloadQuiet = 30 * time.Second

// States is one tenant's product states as a run sees them: read from the
// poller's bucket once, then changed in memory as the run decides; Flush
// hands the changed records to the Sink, which writes them after the events.
// Not safe for concurrent use.
//
// States are stored by record, under "<tenant>.<record key>": a poller may
// keep a product with variations and its variations in one record (keyed by
// the parent's id, see Family), since Hiper moves them together and a record
// per family is a fifth of the writes of a record per product; or each
// product in its own (keyed by its id).
type States struct {
	kv     jetstream.KeyValue
	tenant string
	// records holds what is known: a record's states by product id, or a
	// nil map when the bucket has no such record. complete means every
	// record of the tenant is here.
	records  map[string]map[string][]byte
	complete bool
	dirty    map[string]struct{}
}

// NewStates returns the states of tenant in kv.
func NewStates(kv jetstream.KeyValue, tenantID string) *States {
	return &States{kv: kv, tenant: tenantID, records: map[string]map[string][]byte{}, dirty: map[string]struct{}{}}
}

// Family is the record key of a product kept with its family: its parent's
// id for a variation, its own id otherwise.
func Family(p hiper.Product) string {
	if p.IsVariation() {
		return p.ParentID
	}
	return p.ID
}

// Key is the bucket key of a tenant's record.
func Key(tenantID, record string) string { return tenantID + "." + record }

// Preload reads every record of the tenant at once, for a run that will
// look at most of them (the initial sync, a full resync): one ordered stream
// read instead of a request per record. The watch behind it may be served
// by a replica that is behind: its values count once they reach the last
// revision the stream's leader has for the tenant (events.LastRevision).
func (s *States) Preload(ctx context.Context) error {
	// Deletions are delivered too: their revisions count.
	w, err := s.kv.Watch(ctx, s.tenant+".*")
	if err != nil {
		return fmt.Errorf("read product states: %w", err)
	}
	defer func() { _ = w.Stop() }()
	prefix := len(s.tenant) + 1
	// seen is the last revision delivered; want the leader's, once the
	// watch has delivered what it had (0 before).
	var seen, want uint64
	// A watch whose server died goes quiet; the run's context has no
	// deadline (its lease is renewed while it runs), so a quiet watch
	// fails the run, which is tried again, instead of holding the tenant.
	quiet := time.NewTimer(preloadQuiet)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("read product states: %w", ctx.Err())
		case <-quiet.C:
			return fmt.Errorf("read product states: nothing received for %s", preloadQuiet)
		case e, ok := <-w.Updates():
			quiet.Reset(preloadQuiet)
			if !ok {
				return errors.New("read product states: watch closed")
			}
			if e == nil {
				last, known, err := events.LastRevision(ctx, s.kv, s.tenant+".*")
				if err != nil {
					return fmt.Errorf("read product states: %w", err)
				}
				if !known || seen >= last {
					s.complete = true
					return nil
				}
				want = last
				continue
			}
			seen = max(seen, e.Revision())
			if e.Operation() != jetstream.KeyValuePut {
				delete(s.records, e.Key()[prefix:])
			} else {
				rec, err := decodeRecord(e.Value())
				if err != nil {
					return fmt.Errorf("read product states: %s: %w", e.Key(), err)
				}
				s.records[e.Key()[prefix:]] = rec
			}
			if want > 0 && seen >= want {
				s.complete = true
				return nil
			}
		}
	}
}

// Load reads the records not known yet, in parallel.
func (s *States) Load(ctx context.Context, records []string) error {
	if s.complete {
		return nil
	}
	var missing []string
	for _, r := range records {
		if _, ok := s.records[r]; !ok {
			missing = append(missing, r)
			s.records[r] = nil // also dedups
		}
	}
	if len(missing) == 0 {
		return nil
	}
	got := make([]map[string][]byte, len(missing))
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
					got[i], errs[i] = decodeRecord(e.Value())
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
		for _, r := range missing {
			delete(s.records, r)
		}
		return fmt.Errorf("read product states: %w", err)
	}
	for i, r := range missing {
		s.records[r] = got[i]
	}
	return nil
}

// Get returns a product's state from its record; ok is false when it has
// none (or the record was not loaded).
func (s *States) Get(record, productID string) (state []byte, ok bool) {
	v, ok := s.records[record][productID]
	return v, ok
}

// Set records a product's new state for the rest of the run; Flush hands
// its record to the Sink.
func (s *States) Set(record, productID string, state []byte) {
	rec := s.records[record]
	if rec == nil {
		rec = map[string][]byte{}
		s.records[record] = rec
	}
	rec[productID] = state
	s.dirty[record] = struct{}{}
}

// Each calls f with every product state of the run's records: all of the
// tenant's after Preload. Records in the middle of change appear as they
// are now.
func (s *States) Each(f func(record, productID string, state []byte)) {
	records := make([]string, 0, len(s.records))
	for r := range s.records {
		records = append(records, r)
	}
	slices.Sort(records)
	for _, r := range records {
		ids := make([]string, 0, len(s.records[r]))
		for id := range s.records[r] {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			f(r, id, s.records[r][id])
		}
	}
}

// Flush returns the writes of the records changed since the last Flush, as
// they are now.
func (s *States) Flush() []Write {
	keys := make([]string, 0, len(s.dirty))
	for r := range s.dirty {
		keys = append(keys, r)
	}
	slices.Sort(keys)
	ws := make([]Write, 0, len(keys))
	for _, r := range keys {
		ws = append(ws, Write{Bucket: s.kv.Bucket(), Key: Key(s.tenant, r), Value: encodeRecord(s.records[r])})
	}
	clear(s.dirty)
	return ws
}

// recordVersion prefixes an encoded record.
const recordVersion = 1

// encodeRecord writes a record as its version, then each product's id and
// state, length-prefixed, by id.
func encodeRecord(rec map[string][]byte) []byte {
	ids := make([]string, 0, len(rec))
	size := 1
	for id, st := range rec {
		ids = append(ids, id)
		size += len(id) + len(st) + 2*binary.MaxVarintLen16
	}
	slices.Sort(ids)
	b := make([]byte, 0, size)
	b = append(b, recordVersion)
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
		b = binary.AppendUvarint(b, uint64(len(rec[id])))
		b = append(b, rec[id]...)
	}
	return b
}

var errBadRecord = errors.New("malformed product state record")

func decodeRecord(b []byte) (map[string][]byte, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, errBadRecord
	}
	rec := map[string][]byte{}
	b = b[1:]
	for len(b) > 0 {
		var id, st []byte
		var ok bool
		if id, b, ok = field(b); !ok {
			return nil, errBadRecord
		}
		if st, b, ok = field(b); !ok {
			return nil, errBadRecord
		}
		rec[string(id)] = st
	}
	return rec, nil
}

// field reads one length-prefixed field.
func field(b []byte) (v, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return nil, nil, false
	}
	return b[w : w+int(n)], b[w+int(n):], true
}

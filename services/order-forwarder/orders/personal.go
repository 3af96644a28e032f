package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultPersonalDataRetention is how long a settled order keeps the
// customer's personal data (ORDER_PERSONAL_DATA_RETENTION).
const DefaultPersonalDataRetention = 90 * 24 * time.Hour

// Settled reports whether nothing more will be done with the order's
// approval: it is in Hiper, refused, given up on or cancelled.
func (r *Record) Settled() bool {
	switch r.State {
	case StateAccepted, StateRejected, StateFailed, StateCancelled:
		return true
	}
	return false
}

// RemovePersonalData drops what names or locates the customer (LGPD): the
// stored approval, with its CPF/CNPJ, e-mail and addresses, the
// cancellation's event, Hiper's answers and the notes that may quote them.
// Ids, states, times and the approval's hash stay, so a duplicate approval
// is still told from a corrected one.
func (r *Record) RemovePersonalData(now time.Time) {
	r.Approval = nil
	r.Answer, r.LastError = "", ""
	if r.HiperFailure != nil {
		f := *r.HiperFailure
		f.Message = ""
		r.HiperFailure = &f
	}
	if r.Cancel != nil {
		r.Cancel.Event, r.Cancel.Error = nil, ""
	}
	if r.Outbox != nil && r.Outbox.Published {
		r.Outbox.Payload = nil
	}
	for i := range r.History {
		r.History[i].Note = ""
	}
	r.PersonalDataRemovedAt = now.UTC()
}

// DuePersonalDataRemoval reports whether r is settled for longer than
// retention and still holds personal data.
func (r *Record) DuePersonalDataRemoval(retention time.Duration, now time.Time) bool {
	return r.Settled() && r.PersonalDataRemovedAt.IsZero() && now.Sub(r.UpdatedAt) > retention
}

// RemoveExpiredPersonalData drops the personal data of every record settled
// for longer than retention and returns how many it changed. Records
// changed meanwhile by the forwarder are re-read (compare-and-set), so a
// record that moved on is left alone.
func (s *Store) RemoveExpiredPersonalData(ctx context.Context, retention time.Duration, now time.Time) (int, error) {
	keys, err := s.kv.ListKeys(ctx, jetstream.IgnoreDeletes())
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list orders: %w", err)
	}
	defer func() { _ = keys.Stop() }()
	n := 0
	for key := range keys.Keys() {
		entry, err := s.kv.Get(ctx, key)
		if err != nil {
			continue // deleted since listed
		}
		rec, err := decode(entry.Value())
		if err != nil || !rec.DuePersonalDataRemoval(retention, now) {
			continue
		}
		changed := false
		_, _, err = s.Mutate(ctx, rec.Tenant, rec.OrderID, func(cur *Record) (*Record, error) {
			if cur == nil || !cur.DuePersonalDataRemoval(retention, now) {
				return nil, nil
			}
			cur.RemovePersonalData(now)
			changed = true
			return cur, nil
		})
		if err != nil {
			return n, fmt.Errorf("remove personal data of %s: %w", key, err)
		}
		if changed {
			n++
		}
	}
	return n, ctx.Err()
}

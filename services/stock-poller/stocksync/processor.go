package stocksync

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hipersync/hipersync/pkg/catalog"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/feed"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// processor compares the stock levels the feed brings with those last
// published, for one tenant in one run. Each product's level is a record of
// its own (keyed by its id), so a refresh can find it by id alone.
type processor struct {
	tenant   string
	settings tenant.Settings
	ns       events.Namespace
	states   *feed.States
}

// available reports whether the tenant publishes the available balance:
// quantity minus what Hiper reports as reserved (seeds 003, 004).
func (p *processor) available() bool {
	return p.settings.GetStockBalance() == brokerv1.StockBalance_STOCK_BALANCE_AVAILABLE
}

// level is a product's stock: "quantity|minimum", decimals as hiper.Decimal
// prints them (so 10.000000 and 10 are the same level).
func level(quantity, minimum hiper.Decimal) string {
	return quantity.String() + "|" + minimum.String()
}

// stored is a product's state as the bucket holds it: its level last
// published, how many changes of it were announced, and the reservation
// Hiper last reported when it reported one (a refresh's answer does not,
// and the available balance needs it): "quantity|minimum|changes" or
// "quantity|minimum|changes|reserved". Records written before the count
// was kept have none: zero.
type stored struct {
	level    string
	changes  uint64
	reserved hiper.Decimal
}

func parseStored(b []byte) stored {
	parts := strings.Split(string(b), "|")
	if len(parts) < 3 {
		return stored{level: string(b)}
	}
	st := stored{level: parts[0] + "|" + parts[1]}
	n, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return stored{level: string(b)}
	}
	st.changes = n
	if len(parts) > 3 {
		st.reserved, _ = hiper.NewDecimal(parts[3])
	}
	return st
}

func (s stored) encode() []byte {
	out := s.level + "|" + strconv.FormatUint(s.changes, 10)
	if !s.reserved.IsZero() {
		out += "|" + s.reserved.String()
	}
	return []byte(out)
}

// Decide publishes the products whose level changed. A parent's stock is
// the sum of its variations', which are published each: the parent is not.
// Products the catalog skips (no category and no brand) publish no stock.
// With the available balance, a variation's reservation is what its
// parent's variacao reports; a parent in the call also refreshes its
// variations that the call does not bring themselves.
func (p *processor) Decide(ctx context.Context, carried, fresh []hiper.Product) ([]feed.Change, []hiper.Product, error) {
	ids := make([]string, 0, len(carried)+len(fresh))
	inCall := map[string]bool{}
	reserved := map[string]hiper.Decimal{}
	for _, list := range [][]hiper.Product{carried, fresh} {
		for _, pr := range list {
			ids = append(ids, pr.ID)
			inCall[pr.ID] = true
			for _, v := range pr.Variations {
				ids = append(ids, v.ID)
				reserved[v.ID] = v.ReservedStock
			}
		}
	}
	if err := p.states.Load(ctx, ids); err != nil {
		return nil, nil, err
	}
	var changes []feed.Change
	for _, list := range [][]hiper.Product{carried, fresh} {
		for _, pr := range list {
			if pr.IsParent() {
				if p.available() {
					for _, v := range pr.Variations {
						if _, known := p.states.Get(v.ID, v.ID); known && !inCall[v.ID] {
							if c, ok := p.decide(v.ID, v.Stock, v.MinimumStock, v.ReservedStock); ok {
								changes = append(changes, c)
							}
						}
					}
				}
				continue
			}
			if !catalog.Publishable(pr, p.settings) {
				continue
			}
			r, ok := reserved[pr.ID]
			if !ok {
				r = p.lastReserved(pr.ID)
			}
			if c, ok := p.decide(pr.ID, pr.Stock, pr.MinimumStock, r); ok {
				changes = append(changes, c)
			}
		}
	}
	if ws := p.states.Flush(); len(ws) > 0 {
		changes = append(changes, feed.Change{Writes: ws})
	}
	return changes, nil, nil
}

// lastReserved is the reservation last reported for a product.
func (p *processor) lastReserved(id string) hiper.Decimal {
	b, _ := p.states.Get(id, id)
	return parseStored(b).reserved
}

// decide returns the change of a product's level, if it changed. The
// event's id names the change (its number and the new level), not the level
// alone: a stock back to an earlier level inside the stream's duplicate
// window is announced again (11 → 3 → 11: a sale, then its cancellation),
// while the same change published twice (a crash before its state was
// stored) is dropped by the stream.
//
// quantity is Hiper's physical stock; the available balance takes reserved
// off it.
func (p *processor) decide(id string, quantity, minimum, reserved hiper.Decimal) (feed.Change, bool) {
	if p.available() {
		quantity = hiper.Decimal{Decimal: quantity.Sub(reserved.Decimal)}
	} else {
		reserved = hiper.Decimal{}
	}
	now := stored{level: level(quantity, minimum), reserved: reserved}
	b, known := p.states.Get(id, id)
	prior := parseStored(b)
	if known && prior.level == now.level {
		if !prior.reserved.Equal(reserved.Decimal) {
			now.changes = prior.changes
			p.states.Set(id, id, now.encode())
		}
		return feed.Change{}, false
	}
	now.changes = prior.changes + 1
	p.states.Set(id, id, now.encode())
	c := feed.Change{
		New: !known,
		Events: []feed.Event{{
			Subject: p.ns.HiperSubject(p.tenant, events.KindStockChanged),
			ID:      fmt.Sprintf("%s:stock:%s:%d:%s", p.tenant, id, now.changes, now.level),
			Msg: &eventsv1.StockChanged{
				ProductId: id, Quantity: quantity.String(), MinimumQuantity: minimum.String(),
			},
		}},
	}
	if known {
		was, _, _ := strings.Cut(prior.level, "|")
		if old, err := hiper.NewDecimal(was); err == nil {
			c.StockZeroed = old.IsPositive() && !quantity.IsPositive()
		}
	}
	return c, true
}

// refresh asks the stock endpoint for the products a request names, one
// call each, and publishes those whose level changed. Only products the
// poller already follows are refreshed: a new one comes with the feed, and
// a parent's stock is its variations'.
func refresh(ns events.Namespace) func(ctx context.Context, r *schedule.Run, states *feed.States, sink *feed.Sink) error {
	return func(ctx context.Context, r *schedule.Run, states *feed.States, sink *feed.Sink) error {
		ids := r.Request.Products
		if err := states.Load(ctx, ids); err != nil {
			return err
		}
		p := &processor{tenant: r.Tenant, settings: r.Settings, ns: ns, states: states}
		var changes []feed.Change
		for _, id := range ids {
			if _, known := states.Get(id, id); !known {
				r.Log.Info("stock refresh skips a product the poller does not follow", "product_id", id)
				continue
			}
			lv, err := r.Session.Stock(ctx, 0, id)
			if errors.Is(err, hiper.ErrNotFound) {
				r.Log.Info("stock refresh: product unknown to hiper", "product_id", id)
				continue
			}
			if err != nil {
				return fmt.Errorf("refresh stock of %s: %w", id, err)
			}
			if c, ok := p.decide(id, lv.Quantity, lv.MinimumStock, p.lastReserved(id)); ok {
				changes = append(changes, c)
			}
		}
		changes = append(changes, feed.Change{Writes: states.Flush()})
		n, err := sink.Apply(ctx, changes)
		r.Published(n)
		return err
	}
}

package feed

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// DefaultMaxPlanned is how many changes a planned poll keeps in memory
// before it falls back to following the feed a second time.
const DefaultMaxPlanned = 20_000

// Processor decides what products mean for the store: a poller's own rules.
type Processor interface {
	// Decide turns products into changes against the run's States (it
	// calls Load, Get and Set). It must decide every product of carried,
	// and may defer products of fresh that it cannot decide yet (a
	// variation before its parent) to the next call, as its carried.
	Decide(ctx context.Context, carried, fresh []hiper.Product) (changes []Change, deferred []hiper.Product, err error)
}

// Finisher is a Processor with something to say once a full pass has
// followed the whole feed from its start: about the products the feed no
// longer brings. Every state is loaded then (States.Each).
type Finisher interface {
	Finish(ctx context.Context) ([]Change, error)
}

// Resetting reports whether r republishes the catalogue as created: a
// reset was asked for, or a held reset is being approved.
func Resetting(r *schedule.Run) bool {
	if r.Request != nil && r.Request.Reset {
		return true
	}
	h := r.Status().Held
	return h != nil && h.Reset
}

// FullPass reports whether r follows the whole feed again (a full resync,
// a reset, or the approval of a held one): only after such a pass does a
// Finisher run, so only then need a Processor remember what it saw.
func FullPass(r *schedule.Run) bool {
	h := r.Status().Held
	return r.Full || Resetting(r) || h != nil && h.Full
}

// JobConfig configures a poller's Job.
type JobConfig struct {
	Kind      syncstatus.Kind
	Namespace events.Namespace
	// States is the poller's bucket of product states.
	States jetstream.KeyValue
	Sink   *Sink
	// Publisher publishes the guardrail's events.
	Publisher *events.Publisher
	// NewProcessor returns the Processor of one run.
	NewProcessor func(r *schedule.Run, states *States) Processor
	// Refresh, when set, runs first in a run whose request names products
	// (the stock poller's targeted refresh).
	Refresh func(ctx context.Context, r *schedule.Run, states *States, sink *Sink) error
	// MaxPlanned overrides DefaultMaxPlanned.
	MaxPlanned int
	// Enabled, when set, says whether the tenant's settings want this
	// sync at all; a run of a tenant that does not does nothing, leaving
	// the cursor where it was so that turning it on again goes on from
	// there.
	Enabled func(tenant.Settings) bool
}

// NewJob returns the schedule.Job that runs one poll of a tenant's feed.
func NewJob(cfg JobConfig) schedule.Job {
	if cfg.MaxPlanned <= 0 {
		cfg.MaxPlanned = DefaultMaxPlanned
	}
	return schedule.JobFunc(func(ctx context.Context, r *schedule.Run) error {
		if cfg.Enabled != nil && !cfg.Enabled(r.Settings) {
			return nil
		}
		t := &Tally{}
		run := cfg
		run.Sink = cfg.Sink.Counting(t)
		err := run.poll(ctx, r)
		cfg.logSync(ctx, r, t, err)
		return err
	})
}

// poll runs one poll of the tenant's feed.
func (cfg JobConfig) poll(ctx context.Context, r *schedule.Run) error {
	{
		states := NewStates(cfg.States, r.Tenant)
		if cfg.Refresh != nil && r.Request != nil && len(r.Request.Products) > 0 {
			if err := cfg.Refresh(ctx, r, states, cfg.Sink); err != nil {
				return err
			}
		}
		st := r.Status()
		p := &poll{cfg: &cfg, run: r, states: states, initial: !st.InitialDone, from: st.Cursor}
		p.reset = Resetting(r)
		p.full = FullPass(r)
		if p.full {
			p.from = 0
			if st.FullRunning {
				p.from = st.FullCursor
			}
			if err := r.Save(ctx, func(s *syncstatus.Status) { s.FullRunning, s.FullCursor = true, p.from }); err != nil {
				return err
			}
		}
		p.proc = cfg.NewProcessor(r, states)
		if p.initial || p.full {
			if err := states.Preload(ctx); err != nil {
				return err
			}
		}
		if p.initial || r.Approve {
			return p.stream(ctx)
		}
		return p.plan(ctx)
	}
}

// poll is one run's pass over the feed.
type poll struct {
	cfg     *JobConfig
	run     *schedule.Run
	states  *States
	proc    Processor
	initial bool
	full    bool
	reset   bool
	from    int64
}

// unit is what one batch brought, and the cursor to save once it is stored.
type unit struct {
	cursor  int64
	changes []Change
}

// follow decides the feed from p.from batch by batch, handing each unit to
// use, and returns the last cursor.
func (p *poll) follow(ctx context.Context, use func(unit) error) (int64, error) {
	cursor := p.from
	var carry []hiper.Product
	for batch, err := range prefetch(ctx, p.run.Session.ProductFeed, p.from) {
		if err != nil {
			return cursor, err
		}
		changes, deferred, err := p.proc.Decide(ctx, carry, batch.Products)
		if err != nil {
			return cursor, err
		}
		u := unit{cursor: batch.SyncPoint, changes: changes}
		if len(deferred) > 0 {
			// Their batch is not done: a crash must fetch it again.
			u.cursor = cursor
		}
		if err := use(u); err != nil {
			return cursor, err
		}
		cursor, carry = batch.SyncPoint, deferred
	}
	if err := ctx.Err(); err != nil {
		// The prefetch stops quietly when ctx ends: that is no end of feed.
		return cursor, err
	}
	if len(carry) > 0 {
		changes, _, err := p.proc.Decide(ctx, carry, nil)
		if err != nil {
			return cursor, err
		}
		if err := use(unit{cursor: cursor, changes: changes}); err != nil {
			return cursor, err
		}
	}
	// Only a pass that saw the whole feed (not one resumed after a crash)
	// knows what Hiper no longer returns.
	if f, ok := p.proc.(Finisher); ok && p.full && p.from == 0 {
		changes, err := f.Finish(ctx)
		if err != nil {
			return cursor, err
		}
		if err := use(unit{cursor: cursor, changes: changes}); err != nil {
			return cursor, err
		}
	}
	return cursor, nil
}

// stream publishes each batch as it comes, saving the cursor after each.
func (p *poll) stream(ctx context.Context) error {
	pl := p.pipeline(ctx)
	last, err := p.follow(ctx, func(u unit) error { return pl.push(u, true) })
	if cerr := pl.close(); cerr != nil && !errors.Is(err, cerr) {
		// The failure of a step is also what push returned: say it once.
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return err
	}
	return p.done(ctx, last)
}

// plan follows the whole feed before publishing anything, so the guardrail
// can judge the poll as a whole.
func (p *poll) plan(ctx context.Context) error {
	var (
		units    []unit
		kept     int
		overflow bool
		counts   Counts
	)
	fp := fnv.New64a()
	last, err := p.follow(ctx, func(u unit) error {
		for _, c := range u.changes {
			counts.add(c)
			for _, e := range c.Events {
				fp.Write([]byte(e.ID))
			}
		}
		if overflow {
			return nil
		}
		units = append(units, u)
		if kept += len(u.changes); kept > p.cfg.MaxPlanned {
			overflow, units = true, nil
		}
		return nil
	})
	if err != nil {
		return err
	}
	st := p.run.Status()
	if reasons := p.guard(counts, st.Products); len(reasons) > 0 {
		return p.hold(ctx, counts, st, reasons, hex.EncodeToString(fp.Sum(nil)))
	}
	if overflow {
		// Too much to keep: decide it all again, against the states as
		// stored, and publish as it comes.
		p.run.Log.Info("poll too large to plan in memory; following the feed again", "changes", counts.Changes)
		p.states = NewStates(p.cfg.States, p.run.Tenant)
		p.proc = p.cfg.NewProcessor(p.run, p.states)
		if p.full {
			if err := p.states.Preload(ctx); err != nil {
				return err
			}
		}
		return p.stream(ctx)
	}
	pl := p.pipeline(ctx)
	for _, u := range units {
		if err := pl.push(u, false); err != nil {
			break
		}
	}
	if err := pl.close(); err != nil {
		return err
	}
	if last == p.from && !p.full && st.Held == nil {
		return nil // nothing new: the status stays as it is
	}
	return p.done(ctx, last)
}

// pipeline stores units in order, each in four steps — its events sent,
// their acknowledgements awaited, its writes sent, then their
// acknowledgements awaited and its cursor saved — while the next units are
// decided and go through the earlier steps: one unit's events go out while
// the last one's are confirmed, and its writes while the last one's cursor
// is saved. A unit's writes never go before its events are stored, and its
// cursor is saved only once it and every unit before it are.
type pipeline struct {
	p      *poll
	ctx    context.Context
	cancel context.CancelCauseFunc
	in     chan *queued
	done   chan struct{}
}

type queued struct {
	unit
	// always saves the cursor even when the unit has no changes.
	always bool
	// sent is what the current step awaits.
	sent pending
}

// pipelineDepth is how many decided units may wait for the first step.
const pipelineDepth = 2

func (p *poll) pipeline(ctx context.Context) *pipeline {
	ctx, cancel := context.WithCancelCause(ctx)
	pl := &pipeline{p: p, ctx: ctx, cancel: cancel, in: make(chan *queued, pipelineDepth), done: make(chan struct{})}
	sink := p.cfg.Sink
	// Between the steps a unit waits alone: each step holds one already,
	// and every unit in flight is memory.
	confirm, write, save := make(chan *queued), make(chan *queued), make(chan *queued)
	go pl.step(pl.in, confirm, func(q *queued) (err error) {
		q.sent, err = sink.sendEvents(pl.ctx, q.changes)
		return err
	})
	go pl.step(confirm, write, func(q *queued) error {
		n, err := sink.confirmEvents(pl.ctx, q.changes, q.sent)
		if err == nil {
			p.run.Published(n)
		}
		return err
	})
	go pl.step(write, save, func(q *queued) (err error) {
		if !q.recorded() {
			return nil
		}
		q.sent, err = sink.sendWrites(pl.ctx, q.changes)
		return err
	})
	go func() {
		defer close(pl.done)
		pl.step(save, nil, func(q *queued) error { return p.record(pl.ctx, q) })
		pl.cancel(errPipelineDone)
	}()
	return pl
}

// push queues a unit; it fails once a step has failed.
func (pl *pipeline) push(u unit, always bool) error {
	select {
	case pl.in <- &queued{unit: u, always: always}:
		return nil
	case <-pl.ctx.Done():
		return context.Cause(pl.ctx)
	}
}

// close waits until every queued unit is stored, and returns the first
// failure.
func (pl *pipeline) close() error {
	close(pl.in)
	<-pl.done
	err := context.Cause(pl.ctx)
	pl.cancel(nil)
	if errors.Is(err, errPipelineDone) {
		return nil
	}
	return err
}

var errPipelineDone = errors.New("pipeline drained")

// step runs do on each unit of in, in order, and hands it to out (nil for
// the last step). After a failure anywhere it only drains in.
func (pl *pipeline) step(in <-chan *queued, out chan<- *queued, do func(*queued) error) {
	if out != nil {
		defer close(out)
	}
	for q := range in {
		if pl.ctx.Err() != nil {
			continue // drain
		}
		if err := do(q); err != nil {
			pl.cancel(err)
			continue
		}
		if out != nil {
			select {
			case out <- q:
			case <-pl.ctx.Done():
			}
		}
	}
}

// recorded reports whether the unit leaves anything to record: writes, or
// a cursor to save.
func (q *queued) recorded() bool { return len(q.changes) > 0 || q.always }

// record waits for a unit's writes and saves its cursor.
func (p *poll) record(ctx context.Context, q *queued) error {
	if !q.recorded() {
		return nil
	}
	if err := q.sent.confirmWrites(ctx); err != nil {
		return err
	}
	var added int64
	for _, c := range q.changes {
		if c.New {
			added++
		}
	}
	return p.run.Save(ctx, func(s *syncstatus.Status) {
		s.Products += added
		if p.full {
			s.FullCursor = q.cursor
		} else {
			s.Cursor = q.cursor
		}
	})
}

// done records a finished pass: the cursor, the end of an initial sync or a
// full resync, and lifts any hold.
func (p *poll) done(ctx context.Context, last int64) error {
	return p.run.Save(ctx, func(s *syncstatus.Status) {
		if p.full {
			s.Cursor = max(s.Cursor, last)
			s.FullRunning, s.FullCursor = false, 0
			s.LastFullAt = p.run.Start
		} else {
			s.Cursor = last
		}
		if p.initial {
			s.InitialDone = true
			s.LastFullAt = p.run.Start
		}
		s.Held = nil
	})
}

// Counts are what a poll would do, for the guardrail.
type Counts struct {
	Changes     int64
	New         int64
	Deactivated int64
	StockZeroed int64
	PriceCuts   int64
	Recreated   int64
}

func (c *Counts) add(ch Change) {
	if len(ch.Events) > 0 {
		c.Changes++
	}
	if ch.New {
		c.New++
	}
	if ch.Deactivated {
		c.Deactivated++
	}
	if ch.StockZeroed {
		c.StockZeroed++
	}
	if ch.PriceCut {
		c.PriceCuts++
	}
	if ch.Recreated {
		c.Recreated++
	}
}

// guardReason is one reason to hold a poll: a stable code, the operator's
// English and the merchant's Portuguese.
type guardReason struct{ code, en, pt string }

// guard returns why the poll must be held, if it must: it deactivates more
// than the tenant's percentage of its products, cuts more than its number of
// prices by over half, or republishes the catalogue as created (a reset).
// Catalogues below the tenant's minimum are never held, and stock running
// out never holds a poll: overselling is worse than a false alarm.
func (p *poll) guard(c Counts, products int64) []guardReason {
	s := p.run.Settings
	if products < int64(s.GuardMinProducts()) {
		return nil
	}
	var reasons []guardReason
	pct := int64(s.GuardMaxDeactivatePercent())
	if hit := c.Deactivated; products > 0 && hit*100 > pct*products {
		share := float64(hit) * 100 / float64(products)
		reasons = append(reasons, guardReason{"mass_deactivation",
			fmt.Sprintf("%d of %d products (%.1f%%) would be deactivated, above the %d%% limit", hit, products, share, pct),
			fmt.Sprintf("%d de %d produtos (%.1f%%) seriam desativados, acima do limite de %d%%", hit, products, share, pct)})
	}
	if cuts := int64(s.GuardMaxPriceCuts()); c.PriceCuts > cuts {
		reasons = append(reasons, guardReason{"mass_price_cut",
			fmt.Sprintf("%d prices would be cut by more than half, above the limit of %d", c.PriceCuts, cuts),
			fmt.Sprintf("%d preços cairiam a menos da metade, acima do limite de %d", c.PriceCuts, cuts)})
	}
	if p.reset && c.Recreated > 0 {
		reasons = append(reasons, guardReason{"catalog_reset",
			fmt.Sprintf("a catalog reset would publish %d products anew, as created", c.Recreated),
			fmt.Sprintf("a reinicialização do catálogo enviaria %d produtos de novo, como novos", c.Recreated)})
	}
	return reasons
}

// hold keeps the poll from the store: the cursor stays, the change is
// recorded as held and announced once.
func (p *poll) hold(ctx context.Context, c Counts, st syncstatus.Status, reasons []guardReason, plan string) error {
	if st.Held != nil && st.Held.Plan == plan {
		return nil // the same change, announced already
	}
	kind := string(p.cfg.Kind)
	var en, pt, codes []string
	for _, r := range reasons {
		en, pt, codes = append(en, r.en), append(pt, r.pt), append(codes, r.code)
	}
	summary := fmt.Sprintf("%s poll of %s held: %s. Nothing of it was published; approve with `hipersync sync %s --%s --approve`.",
		kind, p.run.Tenant, joinReasons(en, "and"), p.run.Tenant, kind)
	message := fmt.Sprintf("Mudança em massa retida: %s. Nada dela foi enviado para a loja. Se a mudança no Hiper está certa, aprove-a "+
		"(hipersync sync %s --%s --approve); se não, corrija o cadastro no Hiper e a retenção se desfaz sozinha.",
		joinReasons(pt, "e"), p.run.Tenant, kind)
	counts := map[string]int64{
		"deactivated": c.Deactivated, "stockZeroed": c.StockZeroed, "priceCuts": c.PriceCuts,
		"products": st.Products, "changes": c.Changes,
	}
	id := fmt.Sprintf("%s:guard:%s:%d:%s", p.run.Tenant, kind, p.from, plan)
	ev := &eventsv1.CatalogGuardHeld{Summary: summary, Counts: counts, Kind: kind, Reasons: codes, Message: message}
	if _, err := p.cfg.Publisher.Publish(ctx, p.cfg.Namespace.HiperSubject(p.run.Tenant, events.KindCatalogGuardHeld), id, ev); err != nil {
		return err
	}
	p.run.Published(1)
	p.run.Log.Warn("guardrail holds a mass change", "summary", summary)
	since := time.Now().UTC()
	if st.Held != nil {
		since = st.Held.Since
	}
	return p.run.Save(ctx, func(s *syncstatus.Status) {
		s.Held = &syncstatus.Held{Since: since, From: p.from, Full: p.full, Reset: p.reset, Summary: summary, Counts: counts, Plan: plan}
	})
}

func joinReasons(r []string, and string) string {
	if len(r) == 1 {
		return r[0]
	}
	return strings.Join(r[:len(r)-1], "; ") + "; " + and + " " + r[len(r)-1]
}

// prefetch follows feed one batch ahead of its consumer, so that Hiper's
// next answer downloads while the last one is published.
func prefetch(ctx context.Context, feed func(context.Context, int64) iter.Seq2[hiper.ProductBatch, error], from int64) iter.Seq2[hiper.ProductBatch, error] {
	type item struct {
		b   hiper.ProductBatch
		err error
	}
	return func(yield func(hiper.ProductBatch, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch := make(chan item, 1)
		go func() {
			defer close(ch)
			for b, err := range feed(ctx, from) {
				select {
				case ch <- item{b, err}:
				case <-ctx.Done():
					return
				}
			}
		}()
		for it := range ch {
			if !yield(it.b, it.err) {
				cancel()
				for range ch {
				}
				return
			}
		}
	}
}

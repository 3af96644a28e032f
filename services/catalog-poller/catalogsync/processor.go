package catalogsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hipersync/hipersync/pkg/catalog"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/feed"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Why a product is held back (catalog.product.skipped).
const (
	ReasonMissingCategoryAndBrand  = "missing_category_and_brand"
	messageMissingCategoryAndBrand = "Produto sem categoria e sem marca no Hiper: ele não é enviado para a loja. " +
		"Cadastre uma categoria ou uma marca no Hiper, ou defina uma categoria padrão ou uma marca padrão nas configurações da integração."
)

// Why hipersync itself deactivates a product (catalog.product.upserted
// reason).
const (
	ReasonNotInHiperFeed  = "not_in_hiper_feed"
	messageNotInHiperFeed = "O Hiper não envia mais este produto para a loja virtual (a opção \"Enviar produto para loja virtual\" " +
		"foi desmarcada ou o produto foi excluído): ele foi desativado na loja. Para vendê-lo de novo, marque a opção no cadastro do produto no Hiper."
)

// stateVersion is the version of productState this code writes: 1 since
// the brand has a hash of its own.
const stateVersion = 1

// productState is what the catalog-poller remembers of a product, in its
// family's record of StateBucket (feed.Family).
type productState struct {
	// Published: the store has the product (it was created there).
	Published bool `json:"p,omitempty"`
	// Stub: only the parent's word about this variation (Attrs) is known;
	// the product itself has not been seen yet.
	Stub bool `json:"st,omitempty"`
	// Skipped is the content hash of the version last held back, so each
	// version is reported once.
	Skipped uint64 `json:"s,omitempty"`
	Hashes  hashes `json:"h"`
	// Price and Active as last published, for catalog.price.changed and
	// the guardrail.
	Price  string `json:"pr,omitempty"`
	Active bool   `json:"a,omitempty"`
	// Indexed is the barcode index key written for the product.
	Indexed string `json:"e,omitempty"`
	Attrs   *attrs `json:"v,omitempty"`
	// Changes counts the changes announced about the product. The next
	// change's events carry Changes+1 in their ids, so that an id names a
	// change, not a content: a product back to an earlier version inside
	// the stream's duplicate window is announced again, while the same
	// change published twice (a crash before its state was stored) is not.
	Changes uint64 `json:"n,omitempty"`
	// NoCategory and NoBrand: published, but without a category (brand)
	// yet; the first upsert that has one sends it. Zero in records from
	// before, which sent both at creation.
	NoCategory bool `json:"nc,omitempty"`
	NoBrand    bool `json:"nb,omitempty"`
	// Unlisted: deactivated by hipersync because a full resync no longer
	// found the product in Hiper's feed.
	Unlisted bool `json:"u,omitempty"`
	V        int  `json:"ver,omitempty"`
}

// same reports whether s and o record the same.
func (s productState) same(o productState) bool {
	sa, oa := s.Attrs, o.Attrs
	s.Attrs, o.Attrs = nil, nil
	return s == o && sa.equal(oa)
}

// processor applies the catalog rules of one tenant in one run.
type processor struct {
	tenant      string
	settings    tenant.Settings
	allowed     [groupCount]bool
	ns          events.Namespace
	states      *feed.States
	indexBucket string
	// reset: every product is published anew, as created (catalog reset);
	// unlink: these are (catalog unlink).
	reset  bool
	unlink []string
	// seen are the products this run decided, when it is a full pass
	// (feed.FullPass), for Finish; nil otherwise: an initial sync would
	// keep a key per product in it for nothing.
	seen map[string]bool
	// scratch is where record encodes a state before copying it.
	scratch []byte
}

func (p *processor) state(record, id string) (*productState, error) {
	b, ok := p.states.Get(record, id)
	if !ok {
		return nil, nil
	}
	var st productState
	if err := st.decode(b); err != nil {
		return nil, fmt.Errorf("decode state of product %s: %w", id, err)
	}
	return &st, nil
}

// Decide applies the rules to products. Parents go first: their variacao
// names each child's attributes. A child whose attributes nobody gave yet
// (its parent comes later in the feed) is deferred once.
func (p *processor) Decide(ctx context.Context, carried, fresh []hiper.Product) ([]feed.Change, []hiper.Product, error) {
	all := fresh
	if len(carried) > 0 {
		all = append(slices.Clip(carried), fresh...)
	}
	// A family's record holds the parent and its variations: the records
	// of these products hold every state this call reads.
	inCall := make(map[string]bool, len(all))
	records := make([]string, 0, len(all))
	given := map[string]*attrs{}
	for _, pr := range all {
		inCall[pr.ID] = true
		records = append(records, feed.Family(pr))
		for _, v := range pr.Variations {
			given[v.ID] = attrsOf(v)
		}
	}
	if err := p.states.Load(ctx, records); err != nil {
		return nil, nil, err
	}

	// About a change per product, and the records' writes: room made once.
	changes := make([]feed.Change, 0, len(all)+1)
	var deferred []hiper.Product
	add := func(c feed.Change) {
		if len(c.Events) > 0 || len(c.Writes) > 0 {
			changes = append(changes, c)
		}
	}
	for i, pr := range all {
		prior, err := p.state(feed.Family(pr), pr.ID)
		if err != nil {
			return nil, nil, err
		}
		var a *attrs
		if pr.IsVariation() {
			a = given[pr.ID]
			if a == nil && prior != nil {
				a = prior.Attrs
			}
			if a == nil {
				a = ownAttrs(pr)
			}
			if a == nil && i >= len(carried) {
				deferred = append(deferred, pr)
				continue
			}
		}
		c, err := p.decide(pr, a, prior)
		if err != nil {
			return nil, nil, err
		}
		add(c)
	}
	// Children this call did not bring: their place under the parent.
	for _, pr := range all {
		for _, v := range pr.Variations {
			if inCall[v.ID] {
				continue
			}
			c, err := p.reattribute(v.ID, pr.ID, attrsOf(v))
			if err != nil {
				return nil, nil, err
			}
			add(c)
		}
	}
	add(feed.Change{Writes: p.states.Flush()})
	return changes, deferred, nil
}

// decide applies the rules to one product.
func (p *processor) decide(pr hiper.Product, a *attrs, prior *productState) (feed.Change, error) {
	if p.seen != nil {
		p.seen[pr.ID] = true
	}
	sp := storeProduct(pr, a, p.settings)
	h := hashOf(sp)
	c := feed.Change{New: prior == nil || prior.Stub}
	was := productState{}
	if prior != nil {
		was = *prior
	}
	if was.V < stateVersion && was.Published {
		// Written before the brand had a group of its own: its base hash
		// held the brand. Unchanged base fields are not a change.
		if was.Hashes[groupBase] == legacyBase(sp) {
			was.Hashes[groupBase] = h[groupBase]
		}
		was.Hashes[groupBrand] = h[groupBrand]
	}
	if p.forget(pr.ID) {
		// Unlinked, or the whole catalogue reset: the store is to get it
		// anew, as created (a new change number gives it an id of its own).
		was.Published, was.NoCategory, was.NoBrand = false, false, false
		c.Recreated = prior != nil && prior.Published
	}
	next := was
	next.V, next.Stub, next.Hashes, next.Attrs, next.Unlisted = stateVersion, false, h, a, false
	change := was.Changes + 1

	publishable := catalog.Publishable(pr, p.settings)
	if !publishable {
		if ch := contentHash(h, sp.Category); was.Skipped != ch {
			c.Events = append(c.Events, feed.Event{
				Subject: p.ns.HiperSubject(p.tenant, events.KindCatalogProductSkipped),
				ID:      eventID(p.tenant, "skipped", pr.ID, change, ch),
				Msg: &eventsv1.CatalogProductSkipped{
					ProductId: pr.ID, Reason: ReasonMissingCategoryAndBrand, Message: messageMissingCategoryAndBrand,
				},
			})
			next.Skipped = ch
		}
	} else {
		next.Skipped = 0
		var sets [groupCount]bool
		created := !was.Published
		// Seed 000: the category goes with the first upsert that has one,
		// and never after; so does the brand, unless update-brand.
		withCategory := sp.Category != "" && (created || was.NoCategory)
		if created {
			sets = [groupCount]bool{true, true, true, true, true, pr.IsVariation(), true}
		} else {
			sets = p.allowed
			sets[groupVariation] = pr.IsVariation()
			sets[groupBrand] = sets[groupBrand] || was.NoBrand && sp.Brand != ""
		}
		changed := created || withCategory || was.Unlisted
		for g, on := range sets {
			changed = changed || on && was.Hashes[g] != h[g]
		}
		if changed {
			body := sp
			category := ""
			if withCategory {
				category = sp.Category
			}
			if !created {
				body = only(sp, sets)
				body.Category = category
			}
			c.Events = append(c.Events, feed.Event{
				Subject: p.ns.HiperSubject(p.tenant, events.KindCatalogProductUpserted),
				ID:      eventID(p.tenant, "product", pr.ID, change, eventHash(h, sets, created, category)),
				Msg: &eventsv1.CatalogProductUpserted{
					ProductId: pr.ID, ParentId: sp.ParentId, Created: created, Fields: fieldsOf(sets, withCategory), Product: body,
				},
			})
		}
		if !created && was.Price != sp.Price {
			c.Events = append(c.Events, feed.Event{
				Subject: p.ns.HiperSubject(p.tenant, events.KindCatalogPriceChanged),
				ID:      p.tenant + ":price:" + pr.ID + ":" + strconv.FormatUint(change, 10) + ":" + was.Price + ":" + sp.Price,
				Msg:     &eventsv1.CatalogPriceChanged{ProductId: pr.ID, Price: sp.Price, PreviousPrice: was.Price},
			})
			c.PriceCut = cutByHalf(was.Price, sp.Price)
		}
		if created {
			next.NoCategory, next.NoBrand = sp.Category == "", sp.Brand == ""
		} else {
			next.NoCategory = was.NoCategory && !withCategory
			next.NoBrand = was.NoBrand && sp.Brand == ""
		}
		next.Published = true
		next.Price = sp.Price
		next.Active = sp.Active && !sp.Removed
		c.Deactivated = was.Published && was.Active && !next.Active
	}
	if len(c.Events) > 0 {
		next.Changes = change
	}
	c.Writes = p.index(pr, publishable, &next)
	if prior == nil || !next.same(*prior) {
		p.record(feed.Family(pr), pr.ID, next)
	}
	return c, nil
}

// forget reports whether the store is to get product id anew: the run
// resets the catalogue, or its request unlinks the product.
func (p *processor) forget(id string) bool {
	return p.reset || slices.Contains(p.unlink, id)
}

// Finish runs after a full pass over the feed from its start: a product the
// store has active that Hiper no longer returns (unticked from "Enviar
// produto para loja virtual") is published inactive, with the reason.
func (p *processor) Finish(ctx context.Context) ([]feed.Change, error) {
	if p.seen == nil {
		// Not a full pass: what it did not see says nothing.
		return nil, errors.New("catalog: Finish after a pass that was not full")
	}
	var changes []feed.Change
	var failed error
	p.states.Each(func(record, id string, b []byte) {
		if failed != nil || p.seen[id] {
			return
		}
		var st productState
		if err := st.decode(b); err != nil {
			failed = fmt.Errorf("decode state of product %s: %w", id, err)
			return
		}
		if !st.Published || !st.Active || st.Unlisted {
			return
		}
		parent := ""
		if record != id {
			parent = record
		}
		c := feed.Change{Deactivated: true, Events: []feed.Event{{
			Subject: p.ns.HiperSubject(p.tenant, events.KindCatalogProductUpserted),
			ID:      eventID(p.tenant, "unlisted", id, st.Changes+1, contentHash(st.Hashes, "")),
			Msg: &eventsv1.CatalogProductUpserted{
				ProductId: id, ParentId: parent, Fields: unlistedFields, Product: &eventsv1.Product{Id: id, ParentId: parent},
				Reason: ReasonNotInHiperFeed, Message: messageNotInHiperFeed,
			},
		}}}
		next := st
		next.Active, next.Unlisted, next.Changes = false, true, st.Changes+1
		// Whatever Hiper sends when it lists the product again is news.
		next.Hashes[groupBase] = 0
		if next.Indexed != "" {
			c.Writes = append(c.Writes, feed.Write{Bucket: p.indexBucket, Key: next.Indexed, Delete: true})
			next.Indexed = ""
		}
		p.record(record, id, next)
		changes = append(changes, c)
	})
	if failed != nil {
		return nil, failed
	}
	if ws := p.states.Flush(); len(ws) > 0 {
		changes = append(changes, feed.Change{Writes: ws})
	}
	return changes, nil
}

// unlistedFields are what an upsert of a product Hiper no longer returns
// sets: it is inactive.
var unlistedFields = []string{"active"}

// reattribute records a child's attributes as its parent gives them, and
// tells the store when the child is published and they changed.
func (p *processor) reattribute(childID, parentID string, a *attrs) (feed.Change, error) {
	prior, err := p.state(parentID, childID)
	if err != nil {
		return feed.Change{}, err
	}
	vh := variationHash(parentID, a)
	var c feed.Change
	var next productState
	switch {
	case prior == nil:
		next = productState{Stub: true, Attrs: a}
	case prior.Attrs.equal(a) && (prior.Stub || prior.Hashes[groupVariation] == vh):
		return c, nil
	default:
		next = *prior
		next.Attrs = a
		if !prior.Stub {
			next.Hashes[groupVariation] = vh
		}
		if prior.Published {
			next.Changes++
			sets := [groupCount]bool{groupVariation: true}
			sp := &eventsv1.Product{Id: childID, ParentId: parentID,
				VariationTypeA: a.TypeA, VariationNameA: a.NameA, VariationTypeB: a.TypeB, VariationNameB: a.NameB}
			c.Events = append(c.Events, feed.Event{
				Subject: p.ns.HiperSubject(p.tenant, events.KindCatalogProductUpserted),
				ID:      eventID(p.tenant, "product", childID, next.Changes, eventHash(next.Hashes, sets, false, "")),
				Msg: &eventsv1.CatalogProductUpserted{
					ProductId: childID, ParentId: parentID, Fields: fieldsOf(sets, false), Product: sp,
				},
			})
		}
	}
	p.record(parentID, childID, next)
	return c, nil
}

// index keeps the barcode index (pkg/catalog) in step: a sellable product
// the store has is indexed by its barcode; one that is not, or whose barcode
// changed, is forgotten under the old one.
func (p *processor) index(pr hiper.Product, publishable bool, next *productState) []feed.Write {
	want := ""
	if publishable && sellable(pr) {
		if key, err := catalog.IndexKey(p.tenant, pr.Barcode); err == nil {
			want = key
		}
	}
	var ws []feed.Write
	if next.Indexed != "" && next.Indexed != want {
		ws = append(ws, feed.Write{Bucket: p.indexBucket, Key: next.Indexed, Delete: true})
	}
	if want != "" && want != next.Indexed {
		ws = append(ws, feed.Write{Bucket: p.indexBucket, Key: want, Value: []byte(pr.ID)})
	}
	next.Indexed = want
	return ws
}

// record keeps a product's state in its family's record, for the rest of
// the run and, once flushed, in the bucket.
func (p *processor) record(family, id string, st productState) {
	p.scratch = st.appendJSON(p.scratch[:0])
	p.states.Set(family, id, bytes.Clone(p.scratch))
}

// eventID is the deterministic id of an event of kind about the change
// numbered change of product id, whose content hashes to h:
// "<tenant>:<kind>:<product id>:<change>:<hash>". The number tells apart
// two changes to the same content; the hash, two contents published as the
// same change (one published before a crash, another after it, when Hiper
// moved in between).
func eventID(tenantID, kind, id string, change, h uint64) string {
	var b [16]byte
	hex := strconv.AppendUint(b[:0], h, 16)
	return tenantID + ":" + kind + ":" + id + ":" + strconv.FormatUint(change, 10) + ":" + strings.Repeat("0", 16-len(hex)) + string(hex)
}

// cutByHalf reports whether price fell below half of previous.
func cutByHalf(previous, price string) bool {
	old, err1 := hiper.NewDecimal(previous)
	cur, err2 := hiper.NewDecimal(price)
	if err1 != nil || err2 != nil || !old.IsPositive() {
		return false
	}
	return cur.Add(cur.Decimal).LessThan(old.Decimal)
}

package hipersim

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// Errors of the in-process control API; the HTTP control API maps them to
// status codes.
var (
	ErrUnknownAccount = errors.New("unknown account")
	ErrUnknownProduct = errors.New("unknown product")
	ErrUnknownOrder   = errors.New("unknown order")
	ErrAccountExists  = errors.New("account already exists")
	ErrInvalid        = errors.New("invalid request")
)

// account is one Hiper account: a catalog ordered by sync point and the
// orders it received. One lock per account keeps tenants from contending.
type account struct {
	key string
	id  string // a uuid derived from the key: the token's sid

	tokensIssued atomic.Int64

	mu sync.RWMutex
	// syncPoint is the account's monotonic change counter: each change to
	// a product takes the next value.
	syncPoint int64
	nextCode  int64
	products  map[string]*productEntry
	// feed holds every product in sync-point order. A change appends a new
	// slot instead of moving the old one; stale slots are skipped on read
	// and dropped by compact once they are half of the slice.
	feed  []feedSlot
	stale int
	// children lists each parent's variations in registration order,
	// whether or not the parent itself exists yet.
	children map[string][]*productEntry
	// variationAttrs are the variation axes (cor, tamanho…) of each child,
	// as its parent's variacao last described them.
	variationAttrs map[string]variationAttrs

	orders    map[string]*order
	orderList []*order
	orderSeq  int64
}

// productEntry is one product as last upserted, plus what the feed derives.
type productEntry struct {
	p    hiper.Product // Variations cleared: they are derived from children
	sync int64
	// unlisted: unticked from "Enviar produto para loja virtual"; the feed
	// leaves it out until it is upserted again.
	unlisted bool
	// reserved is quantidadeEmEstoqueReservado, shown in the parent's
	// variacao.
	reserved hiper.Decimal
	// encoded caches the product's feed JSON until it changes. Readers fill
	// it under the read lock; writers clear it under the write lock, so a
	// stale encoding can never be stored after a change.
	encoded atomic.Pointer[[]byte]
}

type feedSlot struct {
	sync  int64
	entry *productEntry
}

type variationAttrs struct {
	typeA, nameA, typeB, nameB string
}

func newAccount(key string) *account {
	sum := sha256.Sum256([]byte("hipersim account " + key))
	return &account{
		key:            key,
		id:             uuidFromBytes(sum[:16]),
		products:       make(map[string]*productEntry),
		children:       make(map[string][]*productEntry),
		variationAttrs: make(map[string]variationAttrs),
		orders:         make(map[string]*order),
	}
}

// touch gives e the next sync point. Callers hold a.mu for writing.
func (a *account) touch(e *productEntry) {
	if e.sync != 0 {
		a.stale++
	}
	a.syncPoint++
	e.sync = a.syncPoint
	e.encoded.Store(nil)
	a.feed = append(a.feed, feedSlot{sync: e.sync, entry: e})
}

// touchWithParent moves e and, when e is a variation, its parent: the
// parent's variacao shows e's stock.
func (a *account) touchWithParent(e *productEntry) {
	a.touch(e)
	if e.p.IsVariation() {
		if parent := a.products[e.p.ParentID]; parent != nil {
			a.touch(parent)
		}
	}
}

// compact drops stale feed slots once they are most of the feed, so reads
// stay proportional to the live catalog. Callers hold a.mu for writing.
func (a *account) compact() {
	if a.stale < 1024 || a.stale*2 < len(a.feed) {
		return
	}
	live := a.feed[:0]
	for _, s := range a.feed {
		if s.sync == s.entry.sync {
			live = append(live, s)
		}
	}
	clear(a.feed[len(live):])
	a.feed = live
	a.stale = 0
}

// upsert validates and stores products in order, each taking a new sync
// point. Nothing is stored when any product is invalid.
func (a *account) upsert(products []hiper.Product) error {
	var problems []string
	for i, p := range products {
		for _, msg := range checkProduct(p) {
			problems = append(problems, fmt.Sprintf("product %d: %s", i, msg))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	// Parents whose variations changed are moved once, after the batch,
	// rather than once per variation.
	var dirtyParents []string
	for _, in := range products {
		p := cloneProduct(in)
		p.ID = normalizeID(p.ID)
		p.ParentID = normalizeID(p.ParentID)
		if p.ParentID == "" {
			p.ParentID = hiper.ZeroID
		}
		for _, v := range in.Variations {
			a.variationAttrs[normalizeID(v.ID)] = variationAttrs{
				typeA: v.TypeA, nameA: v.NameA, typeB: v.TypeB, nameB: v.NameB,
			}
		}
		p.Variations = nil

		e := a.products[p.ID]
		if e == nil {
			e = &productEntry{}
			a.products[p.ID] = e
		} else if e.p.ParentID != p.ParentID && e.p.IsVariation() {
			a.children[e.p.ParentID] = slices.DeleteFunc(a.children[e.p.ParentID],
				func(c *productEntry) bool { return c == e })
			dirtyParents = append(dirtyParents, e.p.ParentID)
		}
		if p.Code == 0 {
			p.Code = e.p.Code
		}
		if p.Code == 0 {
			a.nextCode++
			p.Code = a.nextCode
		}
		a.nextCode = max(a.nextCode, p.Code)
		wasChildOf := e.p.ParentID
		e.p = p
		e.unlisted = false
		if p.IsVariation() {
			if wasChildOf != p.ParentID {
				a.children[p.ParentID] = append(a.children[p.ParentID], e)
			}
			dirtyParents = append(dirtyParents, p.ParentID)
		}
		a.touch(e)
	}
	seen := make(map[string]bool, len(dirtyParents))
	for _, id := range dirtyParents {
		if parent := a.products[id]; parent != nil && !seen[id] {
			seen[id] = true
			a.touch(parent)
		}
	}
	a.compact()
	return nil
}

// checkProduct lists what makes p unfit for the catalog.
func checkProduct(p hiper.Product) []string {
	var problems []string
	if !hiper.ValidID(p.ID) {
		problems = append(problems, "id must be a uuid")
	}
	if p.ParentID != "" && !hiper.ValidID(p.ParentID) {
		problems = append(problems, "produtoPrimarioId must be a uuid")
	}
	if p.ParentID != "" && strings.EqualFold(p.ParentID, p.ID) {
		problems = append(problems, "produtoPrimarioId names the product itself")
	}
	if p.Code < 0 {
		problems = append(problems, "codigo must not be negative")
	}
	return problems
}

// cloneProduct copies p deeply enough that the caller may reuse its slices
// and pointers.
func cloneProduct(p hiper.Product) hiper.Product {
	p.AdditionalImages = slices.Clone(p.AdditionalImages)
	p.Variations = slices.Clone(p.Variations)
	if p.VariationActive != nil {
		v := *p.VariationActive
		p.VariationActive = &v
	}
	if p.WholesaleActive != nil {
		v := *p.WholesaleActive
		p.WholesaleActive = &v
	}
	if p.WholesalePrice != nil {
		v := *p.WholesalePrice
		p.WholesalePrice = &v
	}
	return p
}

// view is e as the feed shows it: a parent lists its variations and their
// stock, and shows their sum as its own. Callers hold a.mu.
func (a *account) view(e *productEntry) hiper.Product {
	p := cloneProduct(e.p)
	if p.AdditionalImages == nil {
		p.AdditionalImages = []hiper.AdditionalImage{}
	}
	p.Variations = []hiper.Variation{}
	if p.IsVariation() {
		p.HasVariations = true
		return p
	}
	kids := a.children[p.ID]
	if len(kids) == 0 {
		return p
	}
	p.HasVariations = true
	total := hiper.Decimal{}
	for _, kid := range kids {
		if kid.unlisted {
			continue
		}
		c := kid.p
		attrs, ok := a.variationAttrs[c.ID]
		if !ok {
			attrs = variationAttrs{typeA: "Cor", nameA: c.Color, typeB: "Tamanho", nameB: c.Size}
		}
		active := c.Active
		if c.VariationActive != nil {
			active = *c.VariationActive
		}
		p.Variations = append(p.Variations, hiper.Variation{
			ID:            c.ID,
			Code:          c.Code,
			Barcode:       c.Barcode,
			TypeA:         attrs.typeA,
			NameA:         attrs.nameA,
			TypeB:         attrs.typeB,
			NameB:         attrs.nameB,
			Stock:         c.Stock,
			ReservedStock: kid.reserved,
			MinimumStock:  c.MinimumStock,
			Active:        active,
		})
		total = hiper.Decimal{Decimal: total.Add(c.Stock.Decimal)}
	}
	p.Stock = total
	return p
}

// encoded returns e's feed JSON, encoding it once per change. Callers hold
// a.mu (a read lock is enough).
func (a *account) encoded(e *productEntry) ([]byte, error) {
	if b := e.encoded.Load(); b != nil {
		return *b, nil
	}
	b, err := json.Marshal(a.view(e))
	if err != nil {
		return nil, fmt.Errorf("encode product %s: %w", e.p.ID, err)
	}
	e.encoded.Store(&b)
	return b, nil
}

// since returns up to limit live entries with a sync point above n, in
// sync-point order. Callers hold a.mu.
func (a *account) since(n int64, limit int) []*productEntry {
	i := sort.Search(len(a.feed), func(i int) bool { return a.feed[i].sync > n })
	var out []*productEntry
	for ; i < len(a.feed) && len(out) < limit; i++ {
		if s := a.feed[i]; s.sync == s.entry.sync && !s.entry.unlisted {
			out = append(out, s.entry)
		}
	}
	return out
}

// setStock sets a product's stock. A parent's stock is the sum of its
// variations', so it cannot be set.
func (a *account) setStock(productID string, quantity hiper.Decimal) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.products[normalizeID(productID)]
	if e == nil {
		return ErrUnknownProduct
	}
	if len(a.children[e.p.ID]) > 0 {
		return fmt.Errorf("%w: product has variations; set the stock of a variation", ErrInvalid)
	}
	e.p.Stock = quantity
	a.touchWithParent(e)
	a.compact()
	return nil
}

// unlist takes a product out of the feed, as unticking "Enviar produto para
// loja virtual" does in Hiper; a parent takes its variations with it. An
// upsert lists it again.
func (a *account) unlist(productID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.products[normalizeID(productID)]
	if e == nil {
		return ErrUnknownProduct
	}
	e.unlisted = true
	for _, kid := range a.children[e.p.ID] {
		kid.unlisted = true
	}
	if e.p.IsVariation() {
		if parent := a.products[e.p.ParentID]; parent != nil {
			a.touch(parent)
		}
	}
	return nil
}

// setReserved sets the quantity reserved of a variation, which its parent's
// variacao shows, moving both sync points.
func (a *account) setReserved(productID string, reserved hiper.Decimal) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.products[normalizeID(productID)]
	if e == nil {
		return ErrUnknownProduct
	}
	e.reserved = reserved
	a.touchWithParent(e)
	a.compact()
	return nil
}

// catalog returns every product as the feed shows it, in sync-point order.
func (a *account) catalog() []hiper.Product {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]hiper.Product, 0, len(a.products))
	for _, s := range a.feed {
		if s.sync == s.entry.sync && !s.entry.unlisted {
			out = append(out, a.view(s.entry))
		}
	}
	return out
}

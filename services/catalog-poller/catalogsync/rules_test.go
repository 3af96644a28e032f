package catalogsync

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/catalog"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/schedule/scheduletest"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

func skippedIDs(s *stack, tenantID string) []string {
	var ids []string
	for _, e := range s.events.Events(tenantID, events.KindCatalogProductSkipped) {
		sk := e.Msg.(*eventsv1.CatalogProductSkipped)
		ids = append(ids, sk.GetProductId())
	}
	return ids
}

func TestWithoutCategoryAndBrandSkippedOncePerChange(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo})
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	var vela hiper.Product
	for _, p := range s.products("acme") {
		if p.Name == "Vela Aromática Lavanda" {
			vela = p
		}
	}
	skipped := s.events.Events("acme", events.KindCatalogProductSkipped)
	if len(skipped) != 2 {
		t.Fatalf("%d skipped, want 2", len(skipped))
	}
	sk := skipped[0].Msg.(*eventsv1.CatalogProductSkipped)
	if sk.GetReason() != ReasonMissingCategoryAndBrand || sk.GetMessage() == "" {
		t.Fatalf("skipped event: %v", sk)
	}
	if _, published := s.upserts("acme")[vela.ID]; published {
		t.Fatal("a product without category and brand was published")
	}

	// A full resync sees it again, unchanged: no second report.
	st := s.request(t, "acme", syncstatus.Request{Full: true})
	if st.LastFullAt.Before(st.LastRequestAt) {
		t.Fatalf("no full resync ran: %+v", st)
	}
	if n := len(skippedIDs(s, "acme")); n != 2 {
		t.Fatalf("%d skipped after a full resync, want still 2", n)
	}

	// Changed, still without either: reported again, once.
	s.change(t, "acme", named(vela.Name), func(p *hiper.Product) { p.Description = "Agora com tampa." })
	s.waitSynced(t, "acme", time.Now())
	if got := skippedIDs(s, "acme"); len(got) != 3 || got[2] != vela.ID {
		t.Fatalf("skipped after a change: %v", got)
	}
	// Given a brand in Hiper: published, created.
	s.change(t, "acme", named(vela.Name), func(p *hiper.Product) { p.Brand = "Aromas" })
	s.waitSynced(t, "acme", time.Now())
	ups := s.upserts("acme")[vela.ID]
	if len(ups) != 1 || !ups[0].GetCreated() || ups[0].GetProduct().GetBrand() != "Aromas" {
		t.Fatalf("upserts of the product given a brand: %v", ups)
	}
}

func TestTenantDefaultsFillIn(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo, Settings: &brokerv1.TenantSettings{
		DefaultCategory: "Diversos", DefaultBrand: "Sem marca",
	}})
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	if n := len(skippedIDs(s, "acme")); n != 0 {
		t.Fatalf("%d skipped with defaults set", n)
	}
	ups := s.upserts("acme")
	if len(ups) != demoProducts {
		t.Fatalf("%d published, want all %d", len(ups), demoProducts)
	}
	for _, p := range s.products("acme") {
		got := ups[p.ID][0].GetProduct()
		wantCat, wantBrand := p.Category, p.Brand
		if wantCat == "" {
			wantCat = "Diversos"
		}
		if wantBrand == "" {
			wantBrand = "Sem marca"
		}
		if got.GetCategory() != wantCat || got.GetBrand() != wantBrand {
			t.Fatalf("%s: category %q brand %q, want %q %q", p.Name, got.GetCategory(), got.GetBrand(), wantCat, wantBrand)
		}
	}
}

func TestCategoryOnCreateOnlyAndUpdateSwitches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		settings *brokerv1.TenantSettings
		want     []string // fields an update sets, besides the base ones
	}{
		{"switches off", &brokerv1.TenantSettings{}, nil},
		{"title", &brokerv1.TenantSettings{UpdateTitle: true}, []string{"name"}},
		{"description", &brokerv1.TenantSettings{UpdateDescription: true}, []string{"description"}},
		{"images", &brokerv1.TenantSettings{UpdateImages: true}, []string{"imageUrl", "additionalImageUrls"}},
		{"dimensions", &brokerv1.TenantSettings{UpdateDimensions: true}, []string{"weightGrams", "heightCm", "widthCm", "lengthCm"}},
		{"all", &brokerv1.TenantSettings{UpdateTitle: true, UpdateDescription: true, UpdateImages: true, UpdateDimensions: true},
			[]string{"name", "description", "imageUrl", "additionalImageUrls", "weightGrams", "heightCm", "widthCm", "lengthCm"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo, Settings: tc.settings})
			s.replica(t, scheduletest.Fast())
			s.waitSynced(t, "acme", time.Now())
			const name = "Café Torrado e Moído Tradicional 500g"
			var id string
			for pid, u := range s.upserts("acme") {
				if u[0].GetProduct().GetName() == name {
					id = pid
					if !u[0].GetCreated() || u[0].GetProduct().GetCategory() != "Mercearia" || !slices.Contains(u[0].GetFields(), "category") {
						t.Fatalf("creation: %v", u[0])
					}
				}
			}
			// Everything the switches cover changes, and the category and
			// the price.
			s.change(t, "acme", named(name), func(p *hiper.Product) {
				p.Name, p.Description, p.Category = "Café Especial 500g", "Torra clara.", "Cafés"
				p.Image, p.AdditionalImages = "https://img.example/novo.jpg", nil
				p.WeightGrams, p.Price = hiper.MustDecimal("520"), hiper.MustDecimal("21.90")
			})
			s.waitSynced(t, "acme", time.Now())
			ups := s.upserts("acme")[id]
			if len(ups) != 2 {
				t.Fatalf("%d upserts, want 2", len(ups))
			}
			u := ups[1]
			base := groupFields[groupBase]
			want := append(slices.Clone(base), tc.want...)
			if u.GetCreated() || !sameSet(u.GetFields(), want) {
				t.Fatalf("update sets %v, want %v", u.GetFields(), want)
			}
			p := u.GetProduct()
			if p.GetCategory() != "" || p.GetPrice() != "21.9" {
				t.Fatalf("update carries category %q, price %q", p.GetCategory(), p.GetPrice())
			}
			if title := slices.Contains(tc.want, "name"); title != (p.GetName() == "Café Especial 500g") {
				t.Fatalf("title switch %v, update name %q", title, p.GetName())
			}
			if dims := slices.Contains(tc.want, "weightGrams"); dims != (p.GetWeightGrams() == "520") {
				t.Fatalf("dimensions switch %v, update weight %q", dims, p.GetWeightGrams())
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestAChangeOnlySwitchesExcludeIsNotPublished(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo})
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	before := s.catalogEvents("acme")
	s.change(t, "acme", firstN(3, simple), func(p *hiper.Product) { p.Name += " (novo nome)" })
	s.waitSynced(t, "acme", time.Now())
	if n := s.catalogEvents("acme") - before; n != 0 {
		t.Fatalf("%d events for title changes the tenant does not take", n)
	}
}

func TestVariationsCarryTheirParentAndAttributes(t *testing.T) {
	t.Parallel()
	// Small batches: the demo seed lists every variation before the
	// parents, several batches apart.
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo, Sim: hipersim.Config{Batch: 7}})
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	checkVariations(t, s)

	// A new product family, registered as a merchant does: each variation
	// is published once, complete.
	parentID, kids := "5f0c54d6-7a53-4d43-9c25-1f1c7b3a9e01", []string{
		"5f0c54d6-7a53-4d43-9c25-1f1c7b3a9e02", "5f0c54d6-7a53-4d43-9c25-1f1c7b3a9e03", "5f0c54d6-7a53-4d43-9c25-1f1c7b3a9e04"}
	parent := hiper.Product{ID: parentID, Name: "Boné Aba Reta", Brand: "Urbano", Category: "Acessórios", Price: hiper.MustDecimal("59.90"),
		Active: true, HasVariations: true, ParentID: hiper.ZeroID}
	family := []hiper.Product{parent}
	for i, id := range kids {
		child := parent
		child.ID, child.ParentID, child.Name, child.Barcode = id, parentID, parent.Name+" "+[]string{"Preto", "Azul", "Verde"}[i], "789000000000"+string(rune('1'+i))
		family = append(family, child)
		family[0].Variations = append(family[0].Variations, hiper.Variation{ID: id, TypeA: "Cor", NameA: []string{"Preto", "Azul", "Verde"}[i], TypeB: "Tamanho", NameB: "Único", Active: true})
	}
	if err := s.Sim.Sim.UpsertProducts(s.Keys["acme"], family); err != nil {
		t.Fatal(err)
	}
	s.waitSynced(t, "acme", time.Now())
	ups := s.upserts("acme")
	for i, id := range kids {
		if len(ups[id]) != 1 {
			t.Fatalf("new variation published %d times, want once", len(ups[id]))
		}
		p := ups[id][0].GetProduct()
		if ups[id][0].GetParentId() != parentID || p.GetVariationNameA() != []string{"Preto", "Azul", "Verde"}[i] || p.GetVariationTypeB() != "Tamanho" {
			t.Fatalf("new variation: %v", ups[id][0])
		}
	}
	if got := ups[parentID][0].GetProduct().GetChildrenIds(); !sameSet(got, kids) || !ups[parentID][0].GetProduct().GetHasVariations() {
		t.Fatalf("new parent lists %v", got)
	}
	checkVariations(t, s)
}

// checkVariations checks what the store knows of every variation, all
// events applied in order, against hiper-sim: parent id and attributes;
// and that each parent lists its variations.
func checkVariations(t *testing.T, s *stack) {
	t.Helper()
	known := map[string]*eventsv1.Product{}
	for _, e := range s.events.Events("acme", events.KindCatalogProductUpserted) {
		u := e.Msg.(*eventsv1.CatalogProductUpserted)
		p := known[u.GetProductId()]
		if p == nil {
			p = &eventsv1.Product{}
			known[u.GetProductId()] = p
		}
		for _, f := range u.GetFields() {
			switch f {
			case "parentId":
				p.ParentId = u.GetProduct().GetParentId()
			case "variationTypeA":
				p.VariationTypeA, p.VariationNameA = u.GetProduct().GetVariationTypeA(), u.GetProduct().GetVariationNameA()
			case "variationTypeB":
				p.VariationTypeB, p.VariationNameB = u.GetProduct().GetVariationTypeB(), u.GetProduct().GetVariationNameB()
			case "childrenIds":
				p.ChildrenIds = u.GetProduct().GetChildrenIds()
			}
		}
	}
	parents := 0
	for _, p := range s.products("acme") {
		if !p.IsParent() {
			continue
		}
		parents++
		var kids []string
		for _, v := range p.Variations {
			kids = append(kids, v.ID)
			got := known[v.ID]
			if got == nil || got.GetParentId() != p.ID || got.GetVariationTypeA() != v.TypeA || got.GetVariationNameA() != v.NameA ||
				got.GetVariationTypeB() != v.TypeB || got.GetVariationNameB() != v.NameB {
				t.Fatalf("variation %s of %s: store knows %v, want %s=%s %s=%s", v.ID, p.Name, got, v.TypeA, v.NameA, v.TypeB, v.NameB)
			}
		}
		if !sameSet(known[p.ID].GetChildrenIds(), kids) {
			t.Fatalf("%s lists %v, want %v", p.Name, known[p.ID].GetChildrenIds(), kids)
		}
	}
	if parents == 0 {
		t.Fatal("no product with variations in the catalog")
	}
}

func TestPriceChangeCarriesOldAndNew(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo})
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	changed := s.change(t, "acme", named("Arroz Branco Tipo 1 5kg"), func(p *hiper.Product) { p.Price = hiper.MustDecimal("29.990") })
	s.waitSynced(t, "acme", time.Now())
	prices := s.events.Events("acme", events.KindCatalogPriceChanged)
	if len(prices) != 1 {
		t.Fatalf("%d price changes, want 1", len(prices))
	}
	pc := prices[0].Msg.(*eventsv1.CatalogPriceChanged)
	if pc.GetProductId() != changed[0].ID || pc.GetPrice() != "29.99" || pc.GetPreviousPrice() != "27.49" {
		t.Fatalf("price change %v", pc)
	}
}

func TestBarcodeIndex(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo})
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	ctx := context.Background()
	kv, err := catalog.EnsureIndex(ctx, s.JS, s.NS)
	if err != nil {
		t.Fatal(err)
	}
	var child, parent hiper.Product
	for _, p := range s.products("acme") {
		switch {
		case p.IsVariation() && child.ID == "":
			child = p
		case p.IsParent() && parent.ID == "":
			parent = p
		}
	}
	if got, err := catalog.Lookup(ctx, kv, "acme", child.Barcode); err != nil || got != child.ID {
		t.Fatalf("look up a variation's barcode: %q, %v; want %s", got, err, child.ID)
	}
	if parent.Barcode != "" {
		if _, err := catalog.Lookup(ctx, kv, "acme", parent.Barcode); !errors.Is(err, catalog.ErrNotIndexed) {
			t.Fatalf("a parent is indexed: %v", err)
		}
	}
	// Deactivated, it is forgotten; a new barcode replaces the old.
	s.change(t, "acme", named(child.Name), func(p *hiper.Product) { p.Active = false })
	other := s.change(t, "acme", firstN(1, simple), func(p *hiper.Product) { p.Barcode = "7890000099991" })
	s.waitSynced(t, "acme", time.Now())
	if _, err := catalog.Lookup(ctx, kv, "acme", child.Barcode); !errors.Is(err, catalog.ErrNotIndexed) {
		t.Fatalf("a deactivated variation is still indexed: %v", err)
	}
	if got, err := catalog.Lookup(ctx, kv, "acme", "7890000099991"); err != nil || got != other[0].ID {
		t.Fatalf("new barcode: %q, %v", got, err)
	}
}

func TestGuardrailHoldsMassDeactivationUntilApproved(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo})
	r := s.replica(t, scheduletest.Fast())
	before := s.waitSynced(t, "acme", time.Now())
	published := s.catalogEvents("acme")

	// 20 of 79 products (25%) deactivated at once.
	off := s.change(t, "acme", firstN(20, simple), func(p *hiper.Product) { p.Active = false })
	var st syncstatus.Status
	testkit.WaitFor(t, 10*time.Second, "the poll to be held", func() bool {
		st = s.status(t, "acme")
		return st.Held != nil
	})
	held := s.events.Events("acme", events.KindCatalogGuardHeld)
	if len(held) != 1 {
		t.Fatalf("%d guard events, want 1", len(held))
	}
	g := held[0].Msg.(*eventsv1.CatalogGuardHeld)
	if g.GetCounts()["deactivated"] != 20 || g.GetCounts()["products"] != demoProducts || g.GetKind() != "catalog" || g.GetSummary() == "" {
		t.Fatalf("guard event %v", g)
	}
	// Polls go on; the change stays held, announced once, the cursor kept.
	calls := len(r.Feed.Cursors())
	testkit.WaitFor(t, 10*time.Second, "three more polls", func() bool { return len(r.Feed.Cursors()) >= calls+3 })
	st = s.status(t, "acme")
	if n := s.catalogEvents("acme"); n != published+1 {
		t.Fatalf("%d events while held, want only the guard's", n-published)
	}
	if st.Cursor != before.Cursor || st.Held == nil {
		t.Fatalf("while held: cursor %d (was %d), held %v", st.Cursor, before.Cursor, st.Held)
	}
	if !st.LastSuccessAt.Equal(before.LastSuccessAt) {
		t.Fatal("a held poll counted as a successful sync")
	}

	st = s.request(t, "acme", syncstatus.Request{Approve: true})
	if st.Held != nil || st.Cursor <= before.Cursor {
		t.Fatalf("after approval: %+v", st)
	}
	ups := s.upserts("acme")
	for _, p := range off {
		last := ups[p.ID][len(ups[p.ID])-1]
		if len(ups[p.ID]) != 2 || last.GetProduct().GetActive() || !slices.Contains(last.GetFields(), "active") {
			t.Fatalf("%s after approval: %v", p.Name, ups[p.ID])
		}
	}
}

func TestGuardrailLiftsWhenHiperIsPutRight(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo, Settings: &brokerv1.TenantSettings{GuardMaxPriceCuts: 2}})
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	original := map[string]hiper.Decimal{}
	s.change(t, "acme", firstN(3, simple), func(p *hiper.Product) {
		original[p.ID] = p.Price
		p.Price = hiper.Decimal{Decimal: p.Price.Div(hiper.MustDecimal("10").Decimal).Round(2)}
	})
	testkit.WaitFor(t, 10*time.Second, "the price cuts to be held", func() bool { return s.status(t, "acme").Held != nil })
	if g := s.events.Events("acme", events.KindCatalogGuardHeld)[0].Msg.(*eventsv1.CatalogGuardHeld); g.GetCounts()["priceCuts"] != 3 {
		t.Fatalf("guard event %v", g)
	}
	// The ERP is put right: the same products, their prices back.
	s.change(t, "acme", func(p hiper.Product) bool { _, ok := original[p.ID]; return ok }, func(p *hiper.Product) { p.Price = original[p.ID] })
	testkit.WaitFor(t, 10*time.Second, "the hold to lift", func() bool { return s.status(t, "acme").Held == nil })
	if n := len(s.events.Events("acme", events.KindCatalogPriceChanged)); n != 0 {
		t.Fatalf("%d price changes published for prices that came back", n)
	}
}

func TestInitialSyncIsExemptFromTheGuardrail(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{})
	catalog := hipersim.GenerateCatalog(0, 0, 20, 3)
	for i := range catalog[:12] {
		catalog[i].Active = false
	}
	if err := s.Sim.Sim.UpsertProducts(s.Keys["acme"], catalog); err != nil {
		t.Fatal(err)
	}
	s.replica(t, scheduletest.Fast())
	st := s.waitSynced(t, "acme", time.Now())
	if st.Held != nil || len(s.upserts("acme")) != 20 {
		t.Fatalf("initial sync of a catalog 60%% inactive: held %v, %d published", st.Held, len(s.upserts("acme")))
	}
}

// Every change of a product reaches a store that reads the stream with a
// durable consumer, also a change back to an earlier version inside the
// stream's duplicate window; a change whose events went out but whose
// state was not recorded (the poller died between the two) reaches it once.
func TestEveryProductChangeReachesTheStoreOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo, Settings: &brokerv1.TenantSettings{UpdateTitle: true}})
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	store := scheduletest.ConsumeAsStore(t, s.JS, s.NS, "acme")
	byID := func(name string) func(hiper.Product) bool {
		var id string
		for _, p := range s.products("acme") {
			if p.Name == name {
				id = p.ID
			}
		}
		return func(p hiper.Product) bool { return p.ID == id }
	}
	arroz, vela := byID("Arroz Branco Tipo 1 5kg"), byID("Vela Aromática Lavanda")
	step := func(pick func(hiper.Product) bool, edit func(*hiper.Product)) {
		t.Helper()
		since := time.Now()
		s.change(t, "acme", pick, edit)
		s.waitSynced(t, "acme", since)
	}
	// A price, a name, and the text of a product held back for its lack of
	// category and brand: each changed, then changed back.
	step(arroz, func(p *hiper.Product) { p.Price = hiper.MustDecimal("29.99") })
	step(arroz, func(p *hiper.Product) { p.Price = hiper.MustDecimal("27.49") })
	step(arroz, func(p *hiper.Product) { p.Name = "Arroz Tipo 1 (5kg)" })
	step(arroz, func(p *hiper.Product) { p.Name = "Arroz Branco Tipo 1 5kg" })
	step(vela, func(p *hiper.Product) { p.Description = "Agora com tampa." })
	step(vela, func(p *hiper.Product) { p.Description = "Vela em pote de vidro, 40 horas de queima." })

	// The poller publishes a change, then cannot record it.
	thaw := scheduletest.FreezeBucket(t, s.JS, s.NS, StateBucket)
	since := time.Now()
	s.change(t, "acme", arroz, func(p *hiper.Product) { p.Price = hiper.MustDecimal("31.00") })
	testkit.WaitFor(t, 10*time.Second, "a poll to publish the change and fail to record it", func() bool {
		return s.status(t, "acme").LastErrorAt.After(since) && len(store.Events(events.KindCatalogPriceChanged)) == 3
	})
	thaw()
	s.waitSynced(t, "acme", time.Now())
	store.CaughtUp(t)

	var prices, upserts []string
	for _, e := range store.Events(events.KindCatalogPriceChanged) {
		prices = append(prices, e.Msg.(*eventsv1.CatalogPriceChanged).GetPrice())
	}
	for _, e := range store.Events(events.KindCatalogProductUpserted) {
		p := e.Msg.(*eventsv1.CatalogProductUpserted).GetProduct()
		upserts = append(upserts, p.GetName()+" "+p.GetPrice())
	}
	if want := []string{"29.99", "27.49", "31"}; !slices.Equal(prices, want) {
		t.Errorf("the store read the prices %v, want %v", prices, want)
	}
	const name, renamed = "Arroz Branco Tipo 1 5kg", "Arroz Tipo 1 (5kg)"
	want := []string{name + " 29.99", name + " 27.49", renamed + " 27.49", name + " 27.49", name + " 31"}
	if !slices.Equal(upserts, want) {
		t.Errorf("the store read the products %q, want %q", upserts, want)
	}
	if n := len(store.Events(events.KindCatalogProductSkipped)); n != 2 {
		t.Errorf("the store read %d skipped products, want 2: the held-back product changed and changed back", n)
	}
}

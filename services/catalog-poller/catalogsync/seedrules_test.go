package catalogsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/catalog"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/feed"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/schedule/scheduletest"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// uid is the n-th product id of a test catalog.
func uid(n int) string { return fmt.Sprintf("6a1e0000-0000-4000-8000-%012d", n) }

// ean13 is a valid EAN-13 for n.
func ean13(n int) string {
	body := fmt.Sprintf("789%09d", n)
	sum := 0
	for i, c := range body {
		d := int(c - '0')
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return body + fmt.Sprint((10-sum%10)%10)
}

// item is a simple product of a test catalog.
func item(n int) hiper.Product {
	return hiper.Product{
		ID: uid(n), Name: fmt.Sprintf("Produto %d", n), Category: "Diversos", Brand: "Marca",
		Barcode: ean13(n), Unit: "UN", Price: hiper.MustDecimal("10"), Active: true,
		Stock: hiper.DecimalFromInt(5),
	}
}

func flag(v *bool) *hiper.Bool {
	if v == nil {
		return nil
	}
	b := hiper.Bool(*v)
	return &b
}

// load puts products in the tenant's hiper-sim account.
func (s *stack) load(t *testing.T, tenantID string, products ...hiper.Product) {
	t.Helper()
	if err := s.Sim.Sim.UpsertProducts(s.Keys[tenantID], products); err != nil {
		t.Fatal(err)
	}
}

func (s *stack) lookup(t *testing.T, tenantID, ean string) string {
	t.Helper()
	kv, err := s.JS.KeyValue(context.Background(), s.NS.Bucket(catalog.IndexBucket))
	if err != nil {
		t.Fatal(err)
	}
	id, err := catalog.Lookup(context.Background(), kv, tenantID, ean)
	if err != nil {
		return ""
	}
	return id
}

func last(ups []*eventsv1.CatalogProductUpserted) *eventsv1.CatalogProductUpserted {
	if len(ups) == 0 {
		return nil
	}
	return ups[len(ups)-1]
}

// variacaoAtiva is documented for variations only: on a simple product or a
// parent it is ignored, whatever it says.
func TestVariationActiveAppliesToVariationsOnly(t *testing.T) {
	t.Parallel()
	f, tr := false, true
	values := []*bool{nil, &f, &tr}
	s := newStack(t, brokertest.Options{})
	var products []hiper.Product
	type want struct {
		id, ean string
		active  bool
		indexed bool
	}
	var wants []want
	for i, v := range values {
		simple := item(10 + i)
		simple.VariationActive = flag(v)
		products = append(products, simple)
		wants = append(wants, want{simple.ID, simple.Barcode, true, true})

		// A parent carrying the value, with one plain variation.
		parent := item(20 + i)
		parent.Barcode, parent.HasVariations, parent.VariationActive = "", true, flag(v)
		kid := item(30 + i)
		kid.ParentID, kid.HasVariations = parent.ID, true
		products = append(products, parent, kid)
		wants = append(wants, want{parent.ID, "", true, false}, want{kid.ID, kid.Barcode, true, true})
	}
	// One parent whose variations carry each value.
	parent := item(40)
	parent.Barcode, parent.HasVariations = "", true
	products = append(products, parent)
	wants = append(wants, want{parent.ID, "", true, false})
	for i, v := range values {
		kid := item(41 + i)
		kid.ParentID, kid.HasVariations, kid.VariationActive = parent.ID, true, flag(v)
		products = append(products, kid)
		off := v != nil && !*v
		wants = append(wants, want{kid.ID, kid.Barcode, !off, !off})
	}
	s.load(t, "acme", products...)
	// hiper-sim serves each shape as given.
	served := map[string]*hiper.Bool{}
	for _, p := range s.products("acme") {
		served[p.ID] = p.VariationActive
	}
	for i, p := range products {
		if (served[p.ID] == nil) != (p.VariationActive == nil) || p.VariationActive != nil && *served[p.ID] != *p.VariationActive {
			t.Fatalf("product %d: hiper-sim serves variacaoAtiva %v, want %v", i, served[p.ID], p.VariationActive)
		}
	}

	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	ups := s.upserts("acme")
	for _, w := range wants {
		u := last(ups[w.id])
		if u == nil {
			t.Fatalf("%s not published", w.id)
		}
		if u.GetProduct().GetActive() != w.active {
			t.Errorf("%s: active %v, want %v", w.id, u.GetProduct().GetActive(), w.active)
		}
		if w.ean != "" {
			if got := s.lookup(t, "acme", w.ean); (got == w.id) != w.indexed {
				t.Errorf("%s: barcode index gives %q, indexed want %v", w.id, got, w.indexed)
			}
		}
	}
}

// Seed 000: "Categoria pai do produto (somente na primeira sincronização do
// produto)". The category goes with the first upsert that has one, never
// after; the brand too, unless update-brand.
func TestCategoryAndBrandGoWithTheFirstUpsertThatHasOne(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Tenants: []string{"acme", "brandy"}})
	noCat, noBrand := item(1), item(2)
	noCat.Category = ""
	noBrand.Brand = ""
	s.load(t, "acme", noCat, noBrand)
	s.load(t, "brandy", noBrand)
	s.settings(t, "brandy", &brokerv1.TenantSettings{UpdateBrand: true}, "update_brand")
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	u := last(s.upserts("acme")[noCat.ID])
	if !u.GetCreated() || slices.Contains(u.GetFields(), "category") || u.GetProduct().GetBrand() != "Marca" {
		t.Fatalf("creation without a category: %v", u)
	}
	u = last(s.upserts("acme")[noBrand.ID])
	if !u.GetCreated() || u.GetProduct().GetCategory() != "Diversos" || !slices.Contains(u.GetFields(), "category") {
		t.Fatalf("creation without a brand: %v", u)
	}

	tenantID := "acme"
	step := func(what string, edit func(p *hiper.Product), pick hiper.Product) *eventsv1.CatalogProductUpserted {
		t.Helper()
		before := len(s.upserts(tenantID)[pick.ID])
		s.change(t, tenantID, named(pick.Name), edit)
		s.waitSynced(t, tenantID, time.Now())
		ups := s.upserts(tenantID)[pick.ID]
		if len(ups) > before+1 {
			t.Fatalf("%s: %d upserts", what, len(ups)-before)
		}
		if len(ups) == before {
			return nil
		}
		return last(ups)
	}
	// A category given later in Hiper arrives, once.
	u = step("category given", func(p *hiper.Product) { p.Category = "Cozinha" }, noCat)
	if u == nil || u.GetCreated() || u.GetProduct().GetCategory() != "Cozinha" || !slices.Contains(u.GetFields(), "category") {
		t.Fatalf("category given later: %v", u)
	}
	if u = step("category changed", func(p *hiper.Product) { p.Category = "Casa" }, noCat); u != nil {
		t.Fatalf("a changed category was sent: %v", u)
	}
	if u = step("category and price changed", func(p *hiper.Product) { p.Category, p.Price = "Sala", hiper.MustDecimal("11") }, noCat); u == nil ||
		slices.Contains(u.GetFields(), "category") || u.GetProduct().GetCategory() != "" {
		t.Fatalf("an update after the first category: %v", u)
	}
	// A brand given later arrives, once; with update-brand, every change.
	u = step("brand given", func(p *hiper.Product) { p.Brand = "Tramontina" }, noBrand)
	if u == nil || u.GetProduct().GetBrand() != "Tramontina" || !slices.Contains(u.GetFields(), "brand") || slices.Contains(u.GetFields(), "category") {
		t.Fatalf("brand given later: %v", u)
	}
	if u = step("brand changed", func(p *hiper.Product) { p.Brand = "Outra" }, noBrand); u != nil {
		t.Fatalf("a changed brand was sent without update-brand: %v", u)
	}
	tenantID = "brandy"
	s.waitSynced(t, tenantID, time.Time{})
	if u = step("brand given with update-brand", func(p *hiper.Product) { p.Brand = "Segunda" }, noBrand); u == nil {
		t.Fatal("brand given with update-brand: not sent")
	}
	u = step("brand changed with update-brand", func(p *hiper.Product) { p.Brand = "Terceira" }, noBrand)
	if u == nil || u.GetProduct().GetBrand() != "Terceira" || !slices.Contains(u.GetFields(), "brand") {
		t.Fatalf("brand change with update-brand: %v", u)
	}
}

// A product unticked from "Enviar produto para loja virtual" leaves Hiper's
// feed; the daily full resync publishes it inactive, with the reason.
func TestFullResyncDeactivatesWhatHiperNoLongerReturns(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{})
	var products []hiper.Product
	for i := range 25 {
		products = append(products, item(100+i))
	}
	s.load(t, "acme", products...)
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())

	gone := products[0]
	if err := s.Sim.Sim.UnlistProduct(s.Keys["acme"], gone.ID); err != nil {
		t.Fatal(err)
	}
	s.waitSynced(t, "acme", time.Now())
	if n := len(s.upserts("acme")[gone.ID]); n != 1 {
		t.Fatalf("an incremental poll published the unlisted product: %d upserts", n)
	}
	s.request(t, "acme", syncstatus.Request{Full: true})
	s.events.CaughtUp(t)
	u := last(s.upserts("acme")[gone.ID])
	if u.GetProduct().GetActive() || !slices.Equal(u.GetFields(), []string{"active"}) ||
		u.GetReason() != ReasonNotInHiperFeed || u.GetMessage() == "" {
		t.Fatalf("unlisted product: %v", u)
	}
	if got := s.lookup(t, "acme", gone.Barcode); got != "" {
		t.Fatalf("an unlisted product is still in the barcode index: %q", got)
	}
	// Once only.
	s.request(t, "acme", syncstatus.Request{Full: true})
	s.events.CaughtUp(t)
	if n := len(s.upserts("acme")[gone.ID]); n != 2 {
		t.Fatalf("%d upserts after a second full resync, want 2", n)
	}
	// Listed again: active again.
	s.load(t, "acme", gone)
	s.waitSynced(t, "acme", time.Now())
	if u := last(s.upserts("acme")[gone.ID]); !u.GetProduct().GetActive() || u.GetReason() != "" {
		t.Fatalf("listed again: %v", u)
	}

	// Six of 25 unlisted at once is over the guardrail's 20 %: held.
	for _, p := range products[1:7] {
		if err := s.Sim.Sim.UnlistProduct(s.Keys["acme"], p.ID); err != nil {
			t.Fatal(err)
		}
	}
	st := s.request(t, "acme", syncstatus.Request{Full: true})
	s.events.CaughtUp(t)
	held := s.events.Events("acme", events.KindCatalogGuardHeld)
	if st.Held == nil || len(held) != 1 {
		t.Fatalf("six of 25 unlisted not held: %+v", st.Held)
	}
	if g := held[0].Msg.(*eventsv1.CatalogGuardHeld); !slices.Equal(g.GetReasons(), []string{"mass_deactivation"}) ||
		!strings.Contains(g.GetMessage(), "6 de 25 produtos") {
		t.Fatalf("guard event for the merchant: %v", g)
	}
	for _, p := range products[1:7] {
		if n := len(s.upserts("acme")[p.ID]); n != 1 {
			t.Fatalf("held, yet %s has %d upserts", p.ID, n)
		}
	}
}

// The guardrail leaves small stores alone, and never holds stock running
// out.
func TestGuardrailSparesSmallCatalogues(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{})
	var products []hiper.Product
	for i := range 10 {
		products = append(products, item(200+i))
	}
	s.load(t, "acme", products...)
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	for i := range products {
		products[i].Active = false
	}
	s.load(t, "acme", products...)
	st := s.waitSynced(t, "acme", time.Now())
	if st.Held != nil {
		t.Fatalf("a 10-product catalogue was held: %s", st.Held.Summary)
	}
	for _, p := range products {
		if u := last(s.upserts("acme")[p.ID]); u.GetProduct().GetActive() {
			t.Fatalf("%s not deactivated", p.ID)
		}
	}
}

// Seed 004's "Desvincular": an unlinked product is published anew, as
// created; a reset republishes the catalogue, after approval when it is
// above the guardrail's minimum.
func TestUnlinkAndReset(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Tenants: []string{"big", "small"}})
	var products []hiper.Product
	for i := range 25 {
		products = append(products, item(300+i))
	}
	s.load(t, "big", products...)
	s.load(t, "small", products[:5]...)
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "big", time.Now())
	s.waitSynced(t, "small", time.Now())

	target := products[3]
	s.request(t, "big", syncstatus.Request{Full: true, Unlink: []string{target.ID}})
	s.events.CaughtUp(t)
	ups := s.upserts("big")[target.ID]
	if len(ups) != 2 || !ups[1].GetCreated() || ups[1].GetProduct().GetCategory() != "Diversos" {
		t.Fatalf("unlinked product: %v", ups)
	}
	if n := len(s.upserts("big")[products[4].ID]); n != 1 {
		t.Fatalf("unlink republished another product too: %d", n)
	}

	s.request(t, "small", syncstatus.Request{Full: true, Reset: true})
	s.events.CaughtUp(t)
	for _, p := range products[:5] {
		if ups := s.upserts("small")[p.ID]; len(ups) != 2 || !ups[1].GetCreated() {
			t.Fatalf("small store reset: %v", ups)
		}
	}

	st := s.request(t, "big", syncstatus.Request{Full: true, Reset: true})
	s.events.CaughtUp(t)
	if st.Held == nil || !st.Held.Reset {
		t.Fatalf("a reset of 25 products was not held: %+v", st.Held)
	}
	if g := s.events.Events("big", events.KindCatalogGuardHeld); len(g) != 1 || !slices.Contains(g[0].Msg.(*eventsv1.CatalogGuardHeld).GetReasons(), "catalog_reset") {
		t.Fatalf("reset guard event: %v", g)
	}
	if n := len(s.upserts("big")[products[0].ID]); n != 1 {
		t.Fatalf("held reset published: %d upserts", n)
	}
	s.request(t, "big", syncstatus.Request{Approve: true})
	s.events.CaughtUp(t)
	for _, p := range products {
		if u := last(s.upserts("big")[p.ID]); !u.GetCreated() || len(s.upserts("big")[p.ID]) < 2 {
			t.Fatalf("approved reset: %s: %v", p.ID, s.upserts("big")[p.ID])
		}
	}
	if st := s.status(t, "big"); st.Held != nil {
		t.Fatalf("still held after approval: %+v", st.Held)
	}
}

// Seed 004's sync log: a run that did something leaves sync.completed with
// its counts; a failed one sync.failed with a reason, a Portuguese message
// and what to do.
func TestSyncLog(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{})
	skipped := item(500)
	skipped.Category, skipped.Brand = "", ""
	s.load(t, "acme", item(501), item(502), skipped)
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	done := s.events.Events("acme", events.KindSyncCompleted)
	if len(done) != 1 {
		t.Fatalf("%d sync.completed after the initial sync, want 1", len(done))
	}
	c := done[0].Msg.(*eventsv1.SyncCompleted)
	if c.GetKind() != "catalog" || c.GetProducts() != 2 || c.GetSkipped() != 1 || c.GetPrices() != 0 {
		t.Fatalf("sync.completed: %v", c)
	}
	// Polls that find nothing new leave nothing.
	s.waitSynced(t, "acme", time.Now())
	if n := len(s.events.Events("acme", events.KindSyncCompleted)); n != 1 {
		t.Fatalf("%d sync.completed after polls that found nothing", n)
	}
	s.change(t, "acme", named("Produto 501"), func(p *hiper.Product) { p.Price = hiper.MustDecimal("12") })
	s.waitSynced(t, "acme", time.Now())
	done = s.events.Events("acme", events.KindSyncCompleted)
	if c := done[len(done)-1].Msg.(*eventsv1.SyncCompleted); c.GetProducts() != 1 || c.GetPrices() != 1 {
		t.Fatalf("sync.completed of a price change: %v", c)
	}

	s.Sim.Sim.SetFaults(hipersim.Faults{ErrorRate: 1, ErrorStatus: 503, Endpoints: []string{hipersim.EndpointProducts}})
	f := s.syncFailed(t, feed.FailureHiperUnavailable)
	s.Sim.Sim.SetFaults(hipersim.Faults{})
	if f.GetKind() != "catalog" || f.GetMessage() == "" || f.GetAction() == "" || f.GetFailures() < 1 {
		t.Fatalf("sync.failed: %v", f)
	}
}

func TestFailureReasons(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("get token: %w", tenant.ErrKeyRefused), feed.FailureInvalidKey},
		{fmt.Errorf("feed: %w", hiper.ErrUnauthorized), feed.FailureTokenRefused},
		{fmt.Errorf("token: %w", brokerclient.ErrUnavailable), feed.FailureTokenUnavailable},
		{tenant.ErrPaused, feed.FailureTenantInactive},
		{fmt.Errorf("feed: %w", hiper.ErrRateLimited), feed.FailureRateLimited},
		{fmt.Errorf("feed: %w", hiper.ErrTransient), feed.FailureHiperUnavailable},
		{fmt.Errorf("record product states: %w", feed.ErrStoreFull), feed.FailureStorageFull},
		{errors.New("disk on fire"), feed.FailureInternal},
	} {
		if got, msg, action := feed.FailureOf(tc.err); got != tc.want || msg == "" || action == "" {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.want)
		}
	}
}

// The sync log names key failures: once Hiper refuses the tenant's key (its
// tokens expired and the key no longer yields one), the catalog poll
// publishes sync.failed with invalid_key and the Portuguese text the merchant
// reads.
func TestSyncLogKeyRefused(t *testing.T) {
	t.Parallel()
	_, f := tokenFault(t, 400, feed.FailureInvalidKey)
	_, msg, action := feed.FailureOf(tenant.ErrKeyRefused)
	if f.GetKind() != "catalog" || f.GetMessage() != msg || f.GetAction() != action {
		t.Fatalf("sync.failed: %v", f)
	}
}

// A token call that fails (Hiper answering 503 when the expired token is
// renewed) is logged as sync.failed hiper_unavailable, not as a refused key:
// the tenant stays active and syncs again once Hiper answers.
func TestSyncLogTokenFailure(t *testing.T) {
	t.Parallel()
	s, f := tokenFault(t, 503, feed.FailureHiperUnavailable)
	s.Sim.Sim.SetFaults(hipersim.Faults{})
	_, msg, action := feed.FailureOf(hiper.ErrTransient)
	if f.GetKind() != "catalog" || f.GetMessage() != msg || f.GetAction() != action {
		t.Fatalf("sync.failed: %v", f)
	}
	s.waitSynced(t, "acme", time.Now()) // still active: syncing resumes
}

// When the integration's own token service cannot be reached, the sync log
// says so (token_unavailable) rather than blaming Hiper or the key, and
// nothing is asked of Hiper without a token.
func TestSyncLogTokenServiceDown(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{})
	s.load(t, "acme", item(701))
	down, err := brokerclient.Dial(brokertest.FreeAddr(t)) // no token-broker listens there
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = down.Close() })
	s.env.Broker = down
	s.replica(t, scheduletest.Fast())
	f := s.syncFailed(t, feed.FailureTokenUnavailable)
	_, msg, action := feed.FailureOf(brokerclient.ErrUnavailable)
	if f.GetKind() != "catalog" || f.GetMessage() != msg || f.GetAction() != action {
		t.Fatalf("sync.failed: %v", f)
	}
	if n := s.Sim.Sim.Stats().Requests[hipersim.EndpointProducts]; n != 0 {
		t.Errorf("%d product feed calls to Hiper without a token", n)
	}
}

// Hiper refusing the token on the feed (401 however often it is renewed)
// is token_refused, and Hiper slowing the integration down (429) is
// hiper_rate_limited: each with its own Portuguese text.
func TestSyncLogFeedRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		reason string
		cause  error
	}{
		{401, feed.FailureTokenRefused, hiper.ErrUnauthorized},
		{429, feed.FailureRateLimited, hiper.ErrRateLimited},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, brokertest.Options{})
			s.load(t, "acme", item(702))
			s.Sim.Sim.SetFaults(hipersim.Faults{ErrorRate: 1, ErrorStatus: tc.status, Endpoints: []string{hipersim.EndpointProducts}})
			s.replica(t, scheduletest.Fast())
			f := s.syncFailed(t, tc.reason)
			_, msg, action := feed.FailureOf(tc.cause)
			if f.GetKind() != "catalog" || f.GetMessage() != msg || f.GetAction() != action {
				t.Fatalf("sync.failed: %v", f)
			}
			s.Sim.Sim.SetFaults(hipersim.Faults{})
			s.waitSynced(t, "acme", time.Now()) // the tenant stays active: syncing resumes
		})
	}
}

// syncFailed waits for the tenant acme's first sync.failed with reason.
func (s *stack) syncFailed(t *testing.T, reason string) *eventsv1.SyncFailed {
	t.Helper()
	var f *eventsv1.SyncFailed
	testkit.WaitFor(t, 30*time.Second, "a sync.failed "+reason, func() bool {
		for _, e := range s.events.Events("acme", events.KindSyncFailed) {
			if m := e.Msg.(*eventsv1.SyncFailed); m.GetReason() == reason {
				f = m
				return true
			}
		}
		return false
	})
	return f
}

// tokenFault syncs a tenant, then expires its tokens while hiper-sim answers
// the token call with status, and returns the first sync.failed with reason.
func tokenFault(t *testing.T, status int, reason string) (*stack, *eventsv1.SyncFailed) {
	t.Helper()
	s := newStack(t, brokertest.Options{})
	s.load(t, "acme", item(601))
	s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	s.Sim.Sim.SetFaults(hipersim.Faults{ErrorRate: 1, ErrorStatus: status, ExpireTokensNow: true,
		Endpoints: []string{hipersim.EndpointToken}})
	return s, s.syncFailed(t, reason)
}

package orders

import (
	"strings"
	"testing"
	"time"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
)

// Settled orders older than the retention lose the customer's data and
// keep ids, states and hashes; orders still open, or settled recently, keep
// everything.
func TestRemoveExpiredPersonalData(t *testing.T) {
	t.Parallel()
	s, _, _ := testStore(t)
	ctx := t.Context()
	now := time.Now()
	old, recent := now.Add(-91*24*time.Hour), now.Add(-time.Hour)
	for _, r := range []*Record{
		{OrderID: "old-accepted", State: StateAccepted, HiperOrderID: "h1", UpdatedAt: old},
		{OrderID: "old-review", State: StateNeedsReview, UpdatedAt: old},
		{OrderID: "new-accepted", State: StateAccepted, HiperOrderID: "h2", UpdatedAt: recent},
	} {
		r.Tenant, r.CreatedAt = "acme", r.UpdatedAt
		r.Answer = "pedido do cliente 52998224725"
		r.History = []Transition{{At: r.UpdatedAt, To: r.State, Note: "CPF 52998224725"}}
		if err := r.SetApproval(&eventsv1.StoreOrderApproved{OrderId: r.OrderID, Customer: &eventsv1.Customer{
			Name: "Ana Souza", Document: "52998224725", Email: "ana@example.com"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.RemoveExpiredPersonalData(ctx, DefaultPersonalDataRetention, now)
	if err != nil || n != 1 {
		t.Fatalf("removed from %d orders (%v), want 1", n, err)
	}
	for id, wantGone := range map[string]bool{"old-accepted": true, "old-review": false, "new-accepted": false} {
		rec, _, err := s.Get(ctx, "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := s.encodeForTest(rec)
		has := strings.Contains(raw, "52998224725") || len(rec.Approval) > 0
		if has == wantGone {
			t.Errorf("%s: personal data kept %v, want %v (%s)", id, has, !wantGone, raw)
		}
		if wantGone && (rec.ApprovalHash == "" || rec.HiperOrderID != "h1" || rec.State != StateAccepted || rec.PersonalDataRemovedAt.IsZero()) {
			t.Errorf("%s lost more than personal data: %+v", id, rec)
		}
	}
	if n, err := s.RemoveExpiredPersonalData(ctx, DefaultPersonalDataRetention, now); err != nil || n != 0 {
		t.Errorf("a second pass changed %d orders (%v)", n, err)
	}
}

func (s *Store) encodeForTest(r *Record) (string, error) {
	_, b, err := s.encode(r)
	return string(b), err
}

// TestReviewTextNamesNoCustomer: the reason of an order under review goes
// into its event and every screen; it says what was sent without naming the
// customer, and where to see who it is.
func TestReviewTextNamesNoCustomer(t *testing.T) {
	t.Parallel()
	r := &Record{Tenant: "acme", OrderID: "1003", Attempts: 2, SentAt: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	if err := r.SetApproval(&eventsv1.StoreOrderApproved{OrderId: "1003", Currency: "BRL",
		Customer:        &eventsv1.Customer{Name: "Ana Souza", Document: "52998224725", Email: "ana@example.com", TradeName: "Souza Modas"},
		ShippingAddress: &eventsv1.Address{Street: "Rua Principal", Number: "22", Complement: "Sala 2", PostalCode: "88351001"},
		Items:           []*eventsv1.OrderItem{{ProductId: "p1", Quantity: "1", UnitPrice: "10.00"}},
		Payments:        []*eventsv1.Payment{{Method: "PIX", Amount: "10.00"}}}); err != nil {
		t.Fatal(err)
	}
	got := r.ReviewText("O Hiper não confirmou o pedido", "HTTP 503 — proxy page")
	for _, want := range []string{"O Hiper não confirmou o pedido", "2026-11-23T12:00:00Z (tentativa 2)", "1 item(ns), pagamentos BRL 10.00",
		"HTTP 503", "hipersync orders show acme 1003", "orders resolve acme 1003 --hiper-id", "orders resolve acme 1003 --resend"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q does not say %q", got, want)
		}
	}
	for _, p := range []string{"Ana", "Souza", "52998224725", "ana@example.com", "Rua Principal", "Sala 2", "88351001"} {
		if strings.Contains(got, p) {
			t.Errorf("%q names the customer (%q)", got, p)
		}
	}
}

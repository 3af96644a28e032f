package forwarder

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/catalog"
	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// TestBounds: past each bound an order is rejected with its own code, and
// never sent: too many items, a too long free text, too many problems (the
// list is cut, the last reason says how many more), an approval whose record
// would not fit in a NATS message (measured against the server's
// max_payload; the record keeps no copy of it).
func TestBounds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")

	many := h.order("acme", "B1", 1)
	for len(many.Items) <= MaxItems {
		many.Items = append(many.Items, many.Items[0])
	}
	notes := h.order("acme", "B2", 1)
	notes.Notes = strings.Repeat("a", maxNotes+1)
	problems := h.order("acme", "B3", 1)
	for range 60 {
		problems.Items = append(problems.Items, &eventsv1.OrderItem{ProductId: problems.Items[0].ProductId, Quantity: "x", UnitPrice: "1"})
	}
	payments := h.order("acme", "B4", 1)
	for len(payments.Payments) <= MaxPayments {
		payments.Payments = append(payments.Payments, payments.Payments[0])
	}
	huge := h.order("acme", "B5", 1)
	huge.Notes = strings.Repeat("n", int(h.st.NATS.MaxPayload())*7/8)
	for _, o := range []*eventsv1.StoreOrderApproved{many, notes, problems, payments, huge} {
		h.approve("acme", o, "store-"+o.OrderId)
	}

	reasons := func(id string) []*eventsv1.RejectionReason {
		return h.waitEvent(events.KindOrderRejected, id, wait).(*eventsv1.OrderRejected).GetReasons()
	}
	if r := reasons("B1"); len(r) != 1 || r[0].GetCode() != CodeTooManyItems || !strings.Contains(r[0].GetMessage(), "501 itens") {
		t.Errorf("501 items: %v", r)
	}
	if r := reasons("B2"); len(r) != 1 || r[0].GetCode() != CodeTooLong || r[0].GetField() != "notes" {
		t.Errorf("long notes: %v", r)
	}
	r := reasons("B3")
	if len(r) != MaxReasons || r[MaxReasons-1].GetCode() != CodeTooManyProblems || !strings.Contains(r[MaxReasons-1].GetMessage(), "E mais 11 problemas") {
		t.Errorf("61 problems: %d reasons, last %v", len(r), r[len(r)-1])
	}
	if r := reasons("B4"); len(r) != 1 || r[0].GetCode() != CodeTooManyPayments {
		t.Errorf("21 payments: %v", r)
	}
	if r := reasons("B5"); len(r) != 1 || r[0].GetCode() != CodeOrderTooLarge {
		t.Errorf("huge approval: %v", r)
	}
	if rec := h.record("acme", "B5"); rec.State != orders.StateRejected || len(rec.Approval) != 0 || rec.ApprovalHash == "" {
		t.Errorf("huge approval's record: %s, %d bytes of approval, hash %q", rec.State, len(rec.Approval), rec.ApprovalHash)
	}
	if h.posted() != 0 {
		t.Errorf("%d create calls", h.posted())
	}
}

// failingCatalog cannot be read: every barcode lookup fails.
type failingCatalog struct{}

func (failingCatalog) Lookup(context.Context, string, string) (string, error) {
	return "", errors.New("barcode index unavailable")
}

// TestRepeatedErrorDeadLetters: an error that repeats (here the barcode
// index failing), which is no wait the forwarder chose, ends after
// ORDER_MAX_ERRORS deliveries as a dead letter and order.failed, never as
// silence for the stream's whole retention.
func TestRepeatedErrorDeadLetters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.catalog = failingCatalog{}
	cfg := testConfig()
	cfg.MaxErrors = 4
	h.forwarder(cfg, "r1")
	o := h.order("acme", "E1", 1)
	o.Items[0].ProductId, o.Items[0].Ean = "", "7891234567895"
	h.approve("acme", o, "store-E1")
	failed := h.waitEvent(events.KindOrderFailed, "E1", wait).(*eventsv1.OrderFailed)
	if !strings.Contains(failed.GetMessage(), "4 vezes") || !strings.Contains(failed.GetMessage(), "barcode index unavailable") ||
		failed.GetCode() != ReasonRepeatedError {
		t.Errorf("order.failed %q", failed.GetMessage())
	}
	var dl []events.DeadLetterEntry
	testkit.WaitFor(t, wait, "the dead letter", func() bool { dl = h.deadLetters(); return len(dl) == 1 })
	if dl[0].Letter.GetReasonCode() != ReasonRepeatedError || dl[0].Letter.GetDeliveries() != 4 {
		t.Errorf("dead letter %v", dl[0].Letter)
	}
	if h.posted() != 0 {
		t.Errorf("%d create calls", h.posted())
	}
}

// FuzzApprovalDecoder feeds the approval decoder and the validation large
// and deep inputs, in both formats: nothing panics, the problems listed stay
// bounded.
func FuzzApprovalDecoder(f *testing.F) {
	valid := validOrder("F1")
	var items strings.Builder
	for i := range 3 * MaxItems {
		if i > 0 {
			items.WriteByte(',')
		}
		items.WriteString(`{"productId":"x","quantity":"1e999999999","unitPrice":"-1"}`)
	}
	f.Add([]byte(`{"orderId":"F1","items":[`+items.String()+`]}`), true)
	f.Add([]byte(`{"orderId":"F1","customer":`+strings.Repeat(`{"name":`, 5000)+`"x"`+strings.Repeat(`}`, 5000)+`}`), true)
	f.Add([]byte(`{"orderId":"F1","items":`+strings.Repeat(`[`, 10000)+strings.Repeat(`]`, 10000)+`}`), true)
	f.Add([]byte(`{"orderId":"`+strings.Repeat("9", 1<<16)+`","notes":"`+strings.Repeat("é", 1<<15)+`"}`), true)
	f.Add([]byte(`{"payments":[`+strings.Repeat(`{"method":"`+strings.Repeat("Z", 500)+`","amount":"1e-999999999"},`, 100)+`{}]}`), true)
	if b, err := proto.Marshal(valid); err == nil {
		f.Add(b, false)
		f.Add(append(b, b...), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		ct := events.ContentTypeProtobuf
		if asJSON {
			ct = events.ContentTypeJSON
		}
		a := &eventsv1.StoreOrderApproved{}
		if err := events.Decode(nats.Header{events.HeaderContentType: []string{ct}}, data, a); err != nil {
			return
		}
		_, reasons, err := Validate(context.Background(), "acme", tenant.SettingsOf(nil), notIndexed{}, a)
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if len(reasons) > MaxReasons {
			t.Fatalf("%d reasons, want at most %d", len(reasons), MaxReasons)
		}
		for _, r := range reasons {
			if len(r.Message) > 2000 {
				t.Fatalf("a %d-byte message: %.100s…", len(r.Message), r.Message)
			}
		}
	})
}

// notIndexed is a catalog that knows no barcode.
type notIndexed struct{}

func (notIndexed) Lookup(_ context.Context, _, ean string) (string, error) {
	return "", catalog.ErrNotIndexed
}

// TestAlphanumericCNPJ: a customer with an alphanumeric CNPJ (issued since
// July 2026) is sent to Hiper as it is; digits-only documents keep working.
func TestAlphanumericCNPJ(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	alnum := h.order("acme", "A1", 1)
	alnum.Customer.Document, alnum.Customer.TradeName = "12.abc.345/01DE-35", "Loja Alfa"
	digits := h.order("acme", "A2", 1)
	digits.Customer.Document, digits.Customer.TradeName = "11.222.333/0001-81", "Loja Beta"
	h.approve("acme", alnum, "store-A1")
	h.approve("acme", digits, "store-A2")
	h.exactlyOnce("acme", []string{"A1", "A2"})
	if got := h.simOrders("acme", "A1")[0].Body.Customer.Document; got != "12ABC34501DE35" {
		t.Errorf("Hiper got document %q", got)
	}
}

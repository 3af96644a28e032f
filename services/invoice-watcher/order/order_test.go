package order

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
)

const (
	hiperID = "0b9d0f4e-6c1a-4d3c-9a51-0c1f4b1a7e10"
	keyNFe  = "35250512345678000190550010000001231000000124"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// record is an order whose progress (order.processing) was announced
// already: TestObserveProcessing covers it, the other tests the rest.
func record() *Record {
	r := &Record{Tenant: "acme", OrderID: "1001", HiperOrderID: hiperID, AcceptedAt: t0, ChangedAt: t0}
	r.MarkPublished(processingMark(StageProcessed), t0)
	r.MarkPublished(processingMark(StageStockSeparated), t0)
	return r
}

func at(d time.Duration) hiper.Time { return hiper.Time{Time: t0.Add(d)} }

func status(situation int, cancelled bool, evs ...hiper.OrderEvent) hiper.OrderStatus {
	return hiper.OrderStatus{ID: hiperID, Situation: situation, Cancelled: cancelled, Events: evs}
}

var (
	processed = hiper.OrderEvent{Type: hiper.EventProcessed, Date: at(time.Second), Note: "Pedido processado"}
	invoiced  = hiper.OrderEvent{Type: hiper.EventInvoiceIssued, Date: at(time.Hour), Note: "NF 123", FiscalKey: keyNFe,
		FiscalType: "NFe", FiscalXMLURL: "https://hiper.example/nfe/123.xml"}
	shipped   = hiper.OrderEvent{Type: hiper.EventShipped, Date: at(2 * time.Hour), Note: "Rastreio: BR123456789BR"}
	cancelled = hiper.OrderEvent{Type: hiper.EventCancelled, Date: at(3 * time.Hour), Note: "Pedido cancelado no Hiper."}
)

func kinds(o Observation) []events.Kind {
	var ks []events.Kind
	for _, e := range o.Events {
		ks = append(ks, e.Kind)
	}
	return ks
}

func TestObserve(t *testing.T) {
	t.Parallel()
	now := t0.Add(5 * time.Hour)
	grace := time.Minute
	cases := []struct {
		name   string
		rec    func(*Record)
		st     hiper.OrderStatus
		kinds  []events.Kind
		final  Final
		origin string
		retry  time.Duration
	}{
		{name: "processing", st: status(hiper.SituationProcessing, false)},
		{name: "processed", st: status(hiper.SituationProcessed, false, processed)},
		{name: "invoiced", st: status(hiper.SituationProcessed, false, processed, invoiced),
			kinds: []events.Kind{events.KindInvoiceIssued}},
		{name: "invoiced and shipped in one answer", st: status(hiper.SituationProcessed, false, processed, invoiced, shipped),
			kinds: []events.Kind{events.KindInvoiceIssued, events.KindOrderShipped}, final: Delivered},
		{name: "shipped after the invoice was published",
			rec:   func(r *Record) { r.MarkPublished(events.KindInvoiceIssued, t0) },
			st:    status(hiper.SituationProcessed, false, processed, invoiced, shipped),
			kinds: []events.Kind{events.KindOrderShipped}, final: Delivered},
		{name: "shipped without an invoice goes on", st: status(hiper.SituationProcessed, false, processed, shipped),
			kinds: []events.Kind{events.KindOrderShipped}},
		{name: "failed", st: status(hiper.SituationFailed, false, hiper.OrderEvent{Type: 1, Note: "Produto sem estoque"}),
			kinds: []events.Kind{events.KindOrderFailed}, final: Failed},
		{name: "failure already published", rec: func(r *Record) { r.MarkPublished(events.KindOrderFailed, t0) },
			st: status(hiper.SituationFailed, false), final: Failed},
		{name: "cancelled by the store", rec: func(r *Record) { r.StoreCancelAt = t0 },
			st: status(hiper.SituationProcessed, true, processed, cancelled), final: Cancelled, origin: OriginStore},
		{name: "merchant's cancellation first seen waits for the grace",
			st: status(hiper.SituationProcessed, true, processed, cancelled), retry: grace},
		{name: "merchant's cancellation within the grace", rec: func(r *Record) { r.CancelSeenAt = now.Add(-20 * time.Second) },
			st: status(hiper.SituationProcessed, true, processed, cancelled), retry: 40 * time.Second},
		{name: "merchant's cancellation after the grace", rec: func(r *Record) { r.CancelSeenAt = now.Add(-grace) },
			st:    status(hiper.SituationProcessed, true, processed, cancelled),
			kinds: []events.Kind{events.KindOrderCancelled}, final: Cancelled, origin: OriginHiper},
		{name: "store asked during the grace", rec: func(r *Record) { r.CancelSeenAt, r.StoreCancelAt = now.Add(-2*grace), now },
			st: status(hiper.SituationProcessed, true, processed, cancelled), final: Cancelled, origin: OriginStore},
		{name: "cancelado without an event 99", rec: func(r *Record) { r.CancelSeenAt = now.Add(-grace) },
			st:    status(hiper.SituationProcessed, true, processed),
			kinds: []events.Kind{events.KindOrderCancelled}, final: Cancelled, origin: OriginHiper},
		{name: "invoice then the merchant's cancellation", rec: func(r *Record) { r.CancelSeenAt = now.Add(-grace) },
			st:    status(hiper.SituationProcessed, true, processed, invoiced, cancelled),
			kinds: []events.Kind{events.KindInvoiceIssued, events.KindOrderCancelled}, final: Cancelled, origin: OriginHiper},
		{name: "all published already", rec: func(r *Record) {
			r.MarkPublished(events.KindInvoiceIssued, t0)
			r.MarkPublished(events.KindOrderShipped, t0)
		}, st: status(hiper.SituationProcessed, false, processed, invoiced, shipped), final: Delivered},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := record()
			if c.rec != nil {
				c.rec(r)
			}
			o, err := Observe(r, c.st, now, Policy{CancelGrace: grace})
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(o); !equalKinds(got, c.kinds) {
				t.Errorf("events = %v, want %v", got, c.kinds)
			}
			if o.Final != c.final || o.CancelOrigin != c.origin || o.Retry != c.retry {
				t.Errorf("final %q origin %q retry %s, want %q %q %s", o.Final, o.CancelOrigin, o.Retry, c.final, c.origin, c.retry)
			}
			for _, e := range o.Events {
				if e.ID != "acme:1001:"+string(e.Kind) {
					t.Errorf("event id %q", e.ID)
				}
				if src, k, err := events.KindOf(e.Message); err != nil || src != events.SourceHiper || k != e.Kind {
					t.Errorf("message %T for kind %s", e.Message, e.Kind)
				}
			}
			// Applied and observed again, nothing more is published.
			r.Apply(o, len(o.Events), now)
			again, err := Observe(r, c.st, now.Add(2*grace), Policy{CancelGrace: grace})
			if err != nil {
				t.Fatal(err)
			}
			if again.Changed {
				t.Error("the same answer counts as a change after Apply")
			}
			for _, e := range again.Events {
				if r.IsPublished(e.Kind) {
					t.Errorf("%s published again", e.Kind)
				}
			}
		})
	}
}

func equalKinds(a, b []events.Kind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestObserveContent(t *testing.T) {
	t.Parallel()
	r := record()
	failedAt := at(90 * time.Second)
	o, err := Observe(r, status(hiper.SituationProcessed, false, processed, invoiced, shipped), t0, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	inv := o.Events[0].Message.(*eventsv1.InvoiceIssued)
	if inv.GetNumber() != "123" || inv.GetAccessKey() != keyNFe || inv.GetDocumentType() != "NFe" || inv.GetSeries() != "1" ||
		inv.GetXmlUrl() != invoiced.FiscalXMLURL || !inv.GetIssuedAt().AsTime().Equal(invoiced.Date.Time) ||
		inv.GetNote() != "NF 123" || len(inv.GetProblems()) != 0 || inv.GetHiperOrderId() != hiperID {
		t.Errorf("invoice = %v", inv)
	}
	if !o.Events[0].HiperAt.Equal(invoiced.Date.Time) {
		t.Errorf("invoice HiperAt = %v", o.Events[0].HiperAt)
	}
	ship := o.Events[1].Message.(*eventsv1.OrderShipped)
	if ship.GetTrackingCode() != "BR123456789BR" || ship.GetNote() != shipped.Note || !ship.GetShippedAt().AsTime().Equal(shipped.Date.Time) {
		t.Errorf("shipped = %v", ship)
	}

	o, _ = Observe(record(), status(hiper.SituationFailed, false, processed,
		hiper.OrderEvent{Type: hiper.EventProcessed, Date: failedAt, Note: "Produto 123 sem estoque"}), t0, Policy{})
	if f := o.Events[0].Message.(*eventsv1.OrderFailed); f.GetMessage() != "Produto 123 sem estoque" || !o.Events[0].HiperAt.Equal(failedAt.Time) {
		t.Errorf("failed = %v at %v", f, o.Events[0].HiperAt)
	}
	// Hiper's text may name the customer; the store's message does not.
	o, _ = Observe(record(), status(hiper.SituationFailed, false, processed,
		hiper.OrderEvent{Type: hiper.EventProcessed, Date: failedAt, Note: "Cliente 529.982.247-25 (ana@example.com) bloqueado"}), t0, Policy{})
	if f := o.Events[0].Message.(*eventsv1.OrderFailed); f.GetMessage() != "Cliente *** (***) bloqueado" {
		t.Errorf("failed naming the customer = %q", f.GetMessage())
	}
	o, _ = Observe(record(), status(hiper.SituationFailed, false), t0, Policy{})
	if f := o.Events[0].Message.(*eventsv1.OrderFailed); !strings.Contains(f.GetMessage(), "não informou") {
		t.Errorf("failed without a note = %v", f)
	}

	r = record()
	r.CancelSeenAt = t0
	o, _ = Observe(r, status(hiper.SituationProcessed, true, processed, cancelled), t0.Add(time.Hour), Policy{})
	c := o.Events[0].Message.(*eventsv1.OrderCancelled)
	if c.GetOrigin() != OriginHiper || !c.GetCancelledAt().AsTime().Equal(cancelled.Date.Time) || c.GetHiperOrderId() != hiperID {
		t.Errorf("cancelled = %v", c)
	}
}

func TestObserveUnexpected(t *testing.T) {
	t.Parallel()
	for _, st := range []hiper.OrderStatus{
		{ID: "another", Situation: 2},
		{ID: hiperID, Situation: 0},
		{ID: hiperID, Situation: 7},
	} {
		if _, err := Observe(record(), st, t0, Policy{}); !errors.Is(err, ErrUnexpectedAnswer) {
			t.Errorf("Observe(%+v) = %v, want ErrUnexpectedAnswer", st, err)
		}
	}
	// An undocumented event type is reported, and the rest used.
	o, err := Observe(record(), status(2, false, processed, hiper.OrderEvent{Type: 7}, invoiced, hiper.OrderEvent{Type: 7}), t0, Policy{})
	if err != nil || len(o.Unknown) != 1 || o.Unknown[0] != 7 || len(o.Events) != 1 {
		t.Errorf("unknown event type: %+v, %v", o, err)
	}
	// The id is compared without case, and may be absent.
	st := status(2, false)
	st.ID = strings.ToUpper(hiperID)
	if _, err := Observe(record(), st, t0, Policy{}); err != nil {
		t.Errorf("upper-case id: %v", err)
	}
}

func TestInvoiceProblems(t *testing.T) {
	t.Parallel()
	problems := func(inv *eventsv1.InvoiceIssued) map[string]string {
		m := map[string]string{}
		for _, p := range inv.GetProblems() {
			if p.GetMessage() == "" {
				t.Errorf("problem %v without a message", p)
			}
			m[p.GetField()] = p.GetCode()
		}
		return m
	}
	cases := []struct {
		name string
		ev   hiper.OrderEvent
		want map[string]string
		// number, access key and document type published
		number, key, docType string
	}{
		{"all valid", invoiced, map[string]string{}, "123", keyNFe, "NFe"},
		{"bad check digit", func() hiper.OrderEvent { e := invoiced; e.FiscalKey = keyNFe[:43] + "9"; return e }(),
			map[string]string{"accessKey": "check_digit"}, "123", "", "NFe"},
		{"short key", func() hiper.OrderEvent { e := invoiced; e.FiscalKey = keyNFe[:40]; return e }(),
			map[string]string{"accessKey": "length"}, "123", "", "NFe"},
		{"no key", func() hiper.OrderEvent { e := invoiced; e.FiscalKey = ""; return e }(),
			map[string]string{"accessKey": "missing"}, "123", "", "NFe"},
		{"number from the key", func() hiper.OrderEvent { e := invoiced; e.Note = "Faturado"; return e }(),
			map[string]string{"number": "from_access_key"}, "123", keyNFe, "NFe"},
		{"number nowhere", func() hiper.OrderEvent { e := invoiced; e.Note, e.FiscalKey = "", ""; return e }(),
			map[string]string{"number": "not_found", "accessKey": "missing"}, "", "", "NFe"},
		{"number disagrees with the key", func() hiper.OrderEvent { e := invoiced; e.Note = "NF 124"; return e }(),
			map[string]string{"number": "mismatch"}, "124", keyNFe, "NFe"},
		{"type from the key", func() hiper.OrderEvent { e := invoiced; e.FiscalType = ""; return e }(),
			map[string]string{}, "123", keyNFe, "NFe"},
		{"type disagrees with the key", func() hiper.OrderEvent { e := invoiced; e.FiscalType = "NFC-e"; return e }(),
			map[string]string{"documentType": "mismatch"}, "123", keyNFe, "NFC-e"},
		{"no type at all", func() hiper.OrderEvent { e := invoiced; e.FiscalType, e.FiscalKey = "", ""; return e }(),
			map[string]string{"documentType": "missing", "accessKey": "missing"}, "123", "", ""},
		{"bad xml url", func() hiper.OrderEvent { e := invoiced; e.FiscalXMLURL = "ftp:/x"; return e }(),
			map[string]string{"xmlUrl": "invalid"}, "123", keyNFe, "NFe"},
		{"no date", func() hiper.OrderEvent { e := invoiced; e.Date = hiper.Time{}; return e }(),
			map[string]string{"issuedAt": "missing"}, "123", keyNFe, "NFe"},
	}
	for _, c := range cases {
		inv := Invoice(record(), c.ev)
		got := problems(inv)
		if len(got) != len(c.want) {
			t.Errorf("%s: problems %v, want %v", c.name, got, c.want)
		}
		for f, code := range c.want {
			if got[f] != code {
				t.Errorf("%s: problem of %s = %q, want %q", c.name, f, got[f], code)
			}
		}
		if inv.GetNumber() != c.number || inv.GetAccessKey() != c.key || inv.GetDocumentType() != c.docType {
			t.Errorf("%s: number %q key %q type %q", c.name, inv.GetNumber(), inv.GetAccessKey(), inv.GetDocumentType())
		}
	}
}

func TestExpire(t *testing.T) {
	t.Parallel()
	r := record()
	if _, ok := Expire(r, t0.Add(29*24*time.Hour), 30*24*time.Hour); ok {
		t.Error("expired before its time")
	}
	o, ok := Expire(r, t0.Add(30*24*time.Hour), 30*24*time.Hour)
	if !ok || o.Final != Expired || len(o.Events) != 1 || o.Events[0].Kind != events.KindOrderWatchExpired {
		t.Fatalf("Expire = %+v, %v", o, ok)
	}
	r.Apply(o, 1, t0)
	if r.Final != Expired || !r.IsPublished(events.KindOrderWatchExpired) {
		t.Errorf("record after expiry: %+v", r)
	}
	// A publish that failed leaves the order open.
	r = record()
	r.Apply(o, 0, t0)
	if r.Final != "" {
		t.Errorf("final without its event published: %+v", r)
	}
}

// The key's encoding: tenant.TestOrderKey.
func TestRecordEncoding(t *testing.T) {
	t.Parallel()
	rec := record()
	rec.MarkPublished(events.KindInvoiceIssued, t0)
	b, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil || !back.IsPublished(events.KindInvoiceIssued) || back.HiperOrderID != hiperID || !back.AcceptedAt.Equal(t0) {
		t.Errorf("Decode(Encode) = %+v, %v", back, err)
	}
	if _, err := Decode([]byte(`{}`)); err == nil {
		t.Error("a record without tenant decoded")
	}
}

func TestSchedule(t *testing.T) {
	t.Parallel()
	s := Schedule{}.WithDefaults()
	cases := []struct {
		since     time.Duration
		expecting bool
		want      time.Duration
	}{
		{0, true, 30 * time.Second},
		{-time.Minute, true, 30 * time.Second},
		{4 * time.Minute, true, 30 * time.Second},
		{8 * time.Minute, true, time.Minute},
		{16 * time.Minute, true, 100 * time.Second},
		{30 * 24 * time.Hour, true, 100 * time.Second},
		{4 * time.Minute, false, 30 * time.Second},
		{16 * time.Minute, false, 2 * time.Minute},
		{40 * time.Minute, false, 5 * time.Minute},
		{30 * 24 * time.Hour, false, 5 * time.Minute},
	}
	for _, c := range cases {
		if got := s.Interval(c.since, c.expecting); got != c.want {
			t.Errorf("Interval(%s, %t) = %s, want %s", c.since, c.expecting, got, c.want)
		}
	}
	// An order not invoiced expects its invoice for 3 days after its
	// acceptance, and after that when Hiper shows its stock separated; an
	// invoiced one expects nothing more.
	r := &Record{AcceptedAt: t0, ChangedAt: t0}
	for _, c := range []struct {
		age  time.Duration
		mark events.Kind
		want bool
	}{
		{time.Hour, "", true},
		{71 * time.Hour, "", true},
		{73 * time.Hour, "", false},
		{73 * time.Hour, processingMark(StageStockSeparated), true},
		{time.Hour, events.KindInvoiceIssued, false},
	} {
		r.Published = nil
		if c.mark != "" {
			r.MarkPublished(c.mark, t0)
		}
		if got := s.Expecting(r, t0.Add(c.age)); got != c.want {
			t.Errorf("Expecting at %s with %q published = %t, want %t", c.age, c.mark, got, c.want)
		}
	}
	r.Published = nil
	for range 1000 {
		if d := s.Next(r, t0.Add(time.Hour)); d < 90*time.Second || d > 110*time.Second {
			t.Fatalf("Next(1h old, expecting) = %s, want 100s ± 10%%", d)
		}
		if d := s.Next(r, t0.Add(4*24*time.Hour)); d < 270*time.Second || d > 330*time.Second {
			t.Fatalf("Next(4 days old) = %s, want 5m ± 10%%", d)
		}
	}
	// A ceiling set alone bounds the invoice ceiling too.
	if s := (Schedule{Max: time.Minute}).WithDefaults(); s.Expect != time.Minute {
		t.Errorf("Expect with Max 1m = %s", s.Expect)
	}
	// 30 s for 4 minutes, then backing off: an order invoiced and shipped
	// within its first minute is polled twice; one invoiced after 3 hours
	// and shipped after a day about 390 times, against 2880 at a fixed 30 s.
	calls := func(l life) int { return simulate(s, []life{l}, 1e6*time.Hour, rand.New(rand.NewPCG(1, 1))).calls }
	if n := calls(life{invoiced: time.Second, shipped: time.Second, hasInvoice: true, hasShip: true}); n != 1 {
		t.Errorf("calls for a 1 s life = %d", n)
	}
	n := calls(life{processed: time.Minute, invoiced: 3 * time.Hour, shipped: 24 * time.Hour, hasProcessed: true, hasInvoice: true, hasShip: true})
	if n < 360 || n > 420 {
		t.Errorf("calls for a day's life = %d", n)
	}
}

func TestObserveExpires(t *testing.T) {
	t.Parallel()
	month := 30 * 24 * time.Hour
	o, err := Observe(record(), status(hiper.SituationProcessed, false, processed, invoiced), t0.Add(month), Policy{MaxAge: month})
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(o); o.Final != Expired || !equalKinds(got, []events.Kind{events.KindInvoiceIssued, events.KindOrderWatchExpired}) {
		t.Errorf("past its max age: final %q, events %v", o.Final, got)
	}
	o, _ = Observe(record(), status(hiper.SituationProcessed, false, processed, invoiced, shipped), t0.Add(month), Policy{MaxAge: month})
	if o.Final != Delivered || len(o.Events) != 2 {
		t.Errorf("made final by the same answer: %q, %v", o.Final, kinds(o))
	}
}

func TestChangedAt(t *testing.T) {
	t.Parallel()
	now := t0.Add(72 * time.Hour)
	cases := []struct {
		name string
		rec  func(*Record)
		st   hiper.OrderStatus
		want time.Time
	}{
		{"the newest event's date", nil, status(2, false, processed, invoiced), invoiced.Date.Time},
		{"no dates", nil, status(2, false, hiper.OrderEvent{Type: 1}), now},
		{"a date in the future", nil, status(2, false, hiper.OrderEvent{Type: 1, Date: hiper.Time{Time: now.Add(time.Hour)}}), now},
		{"a change without a new event", func(r *Record) { r.Events, r.ChangedAt = 1, t0.Add(time.Hour) },
			status(2, true, processed), now},
		{"new events older than the last change", func(r *Record) { r.ChangedAt = t0.Add(10 * time.Hour) },
			status(2, false, processed, invoiced), t0.Add(10 * time.Hour)},
	}
	for _, c := range cases {
		r := record()
		if c.rec != nil {
			c.rec(r)
		}
		o, err := Observe(r, c.st, now, Policy{})
		if err != nil {
			t.Fatal(err)
		}
		r.Apply(o, len(o.Events), now)
		if !r.ChangedAt.Equal(c.want) {
			t.Errorf("%s: ChangedAt %v, want %v", c.name, r.ChangedAt, c.want)
		}
	}
}

// Hiper's events 1 and 2 reach the store as order.processing, each stage
// once, with Hiper's order number; later events carry the number too.
func TestObserveProcessing(t *testing.T) {
	t.Parallel()
	r := &Record{Tenant: "acme", OrderID: "1001", HiperOrderID: hiperID, AcceptedAt: t0, ChangedAt: t0}
	separated := hiper.OrderEvent{Type: hiper.EventStockSeparated, Date: at(time.Minute), Note: "Separado"}
	st := status(hiper.SituationProcessed, false, processed)
	st.Code = "LV00000000002"
	o, err := Observe(r, st, t0.Add(time.Hour), Policy{})
	if err != nil || len(o.Events) != 1 {
		t.Fatalf("processed: %v %v", kinds(o), err)
	}
	p := o.Events[0].Message.(*eventsv1.OrderProcessing)
	if p.GetStage() != StageProcessed || p.GetHiperOrderCode() != "LV00000000002" || p.GetHiperEventCode() != 1 ||
		o.Events[0].ID != "acme:1001:order.processing.processed" {
		t.Fatalf("order.processing: %v (%s)", p, o.Events[0].ID)
	}
	r.Apply(o, 1, t0.Add(time.Hour))
	if r.HiperCode != "LV00000000002" {
		t.Fatalf("record code %q", r.HiperCode)
	}
	// The next answer adds event 2 and the invoice; Hiper leaves the code
	// out this time: the recorded one is used.
	st = status(hiper.SituationProcessed, false, processed, separated, invoiced)
	o, err = Observe(r, st, t0.Add(2*time.Hour), Policy{})
	if err != nil || !equalKinds(kinds(o), []events.Kind{events.KindOrderProcessing, events.KindInvoiceIssued}) {
		t.Fatalf("separated and invoiced: %v %v", kinds(o), err)
	}
	if p := o.Events[0].Message.(*eventsv1.OrderProcessing); p.GetStage() != StageStockSeparated || p.GetHiperOrderCode() != "LV00000000002" {
		t.Fatalf("stock separated: %v", p)
	}
	if inv := o.Events[1].Message.(*eventsv1.InvoiceIssued); inv.GetHiperOrderCode() != "LV00000000002" {
		t.Fatalf("invoice without the code: %v", inv)
	}
	r.Apply(o, len(o.Events), t0.Add(2*time.Hour))
	if o, _ = Observe(r, st, t0.Add(3*time.Hour), Policy{}); len(o.Events) != 0 {
		t.Fatalf("published again: %v", kinds(o))
	}
	// A failed order gets order.failed, not order.processing.
	f := &Record{Tenant: "acme", OrderID: "1002", HiperOrderID: hiperID, AcceptedAt: t0, ChangedAt: t0}
	if o, _ = Observe(f, status(hiper.SituationFailed, false, processed), t0.Add(time.Hour), Policy{}); !equalKinds(kinds(o), []events.Kind{events.KindOrderFailed}) {
		t.Fatalf("failed: %v", kinds(o))
	}
}

// A booked turn is the task's next delivery's, from its time (less the
// clocks' skew) on; any other delivery books again.
func TestBookedTurn(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	r := &Record{Turn: &Turn{At: at, Delivery: 7}}
	for _, c := range []struct {
		delivery uint64
		now      time.Time
		want     bool
	}{
		{8, at, true},
		{8, at.Add(5 * time.Second), true},   // after the alignment's mark
		{8, at.Add(-time.Second), true},      // a clock a second behind
		{8, at.Add(-2 * time.Second), false}, // too early: a settle was lost
		{9, at.Add(time.Second), false},      // taken already, or lost
		{7, at.Add(time.Second), false},      // the booking delivery itself
		{1, at.Add(time.Second), false},      // a first delivery again
	} {
		if got := r.Booked(c.delivery, c.now, time.Second); got != c.want {
			t.Errorf("delivery %d at %s: booked %v, want %v", c.delivery, c.now.Sub(at), got, c.want)
		}
	}
	if (&Record{}).Booked(1, at, time.Second) {
		t.Error("a record without a turn has one")
	}
}

// Two polls of one order observe the same record; the later answer is
// recorded first. The earlier answer, applied last, leaves the record as
// the later one made it: Hiper's answers only move forward.
func TestApplyOlderAnswerLast(t *testing.T) {
	p := Policy{}
	for _, tc := range []struct {
		name         string
		older, newer hiper.OrderStatus
	}{
		{"fewer events", status(hiper.SituationProcessing, false, processed), status(hiper.SituationProcessing, false, processed, invoiced)},
		{"not yet cancelled", status(hiper.SituationProcessed, false, processed), status(hiper.SituationProcessed, true, processed)},
		{"still processing", status(hiper.SituationProcessing, false), status(hiper.SituationProcessed, false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := record()
			older, err := Observe(seen, tc.older, t0.Add(2*time.Hour), p)
			if err != nil {
				t.Fatal(err)
			}
			newer, err := Observe(seen, tc.newer, t0.Add(3*time.Hour), p)
			if err != nil {
				t.Fatal(err)
			}
			r := record()
			r.Apply(newer, len(newer.Events), t0.Add(3*time.Hour))
			want := *r
			r.Apply(older, len(older.Events), t0.Add(4*time.Hour))
			if r.Situation != want.Situation || r.HiperCancelled != want.HiperCancelled || r.Events != want.Events || !r.ChangedAt.Equal(want.ChangedAt) {
				t.Errorf("older answer recorded over the newer: got situation %d cancelled %v events %d changed %s, want %d %v %d %s",
					r.Situation, r.HiperCancelled, r.Events, r.ChangedAt, want.Situation, want.HiperCancelled, want.Events, want.ChangedAt)
			}
			// In order, each is recorded.
			r = record()
			r.Apply(older, len(older.Events), t0.Add(2*time.Hour))
			r.Apply(newer, len(newer.Events), t0.Add(3*time.Hour))
			if r.Situation != want.Situation || r.HiperCancelled != want.HiperCancelled || r.Events != want.Events {
				t.Errorf("newer answer after the older: got situation %d cancelled %v events %d, want %d %v %d",
					r.Situation, r.HiperCancelled, r.Events, want.Situation, want.HiperCancelled, want.Events)
			}
		})
	}
}

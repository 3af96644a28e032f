package order

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/personal"
	"github.com/hipersync/hipersync/services/invoice-watcher/notes"
)

// ErrUnexpectedAnswer is an answer of Hiper that parses but makes no sense
// for the order (another order's id, an undocumented situation): it is
// dead-lettered and the order polled again later, as if it had not come.
var ErrUnexpectedAnswer = errors.New("unexpected answer from hiper")

// DefaultCancelGrace is Policy.CancelGrace's default.
const DefaultCancelGrace = 30 * time.Second

// Policy tunes Observe.
type Policy struct {
	// CancelGrace is how long a cancellation the store has not asked for
	// waits before it is announced as the merchant's (origin hiper): a
	// store's request that Hiper carried out quickly may still be on its
	// way to the watcher (default 30s).
	CancelGrace time.Duration
	// MaxAge, when set, ends the watch of an order accepted that long ago
	// that this answer does not make final, with order.watch_expired.
	MaxAge time.Duration
}

// Event is one event to publish about an order.
type Event struct {
	Kind events.Kind
	// Mark is what the record marks published, when not Kind: the two
	// stages of order.processing are each published once.
	Mark    events.Kind
	ID      string
	Message proto.Message
	// HiperAt is when Hiper registered what the event reports; zero when
	// Hiper did not say.
	HiperAt time.Time
}

// Observation is what one answer of Hiper means for an order.
type Observation struct {
	// Events are to be published in this order.
	Events []Event
	// Changed says the answer differs from the one last recorded.
	Changed bool
	// Final is how the order ends once Events are published; "" when it
	// goes on.
	Final        Final
	CancelOrigin string
	// CancelSeen: a cancellation the store did not ask for was seen for the
	// first time.
	CancelSeen bool
	// Retry, when not zero, is the longest wait before the next poll: a
	// cancellation's grace period ends then.
	Retry time.Duration
	// Unknown lists the event types in the answer that Hiper does not
	// document; the known ones are used all the same.
	Unknown []int

	situation int
	cancelled bool
	events    int
	changedAt time.Time
	code      string
}

// Stages of order.processing: Hiper's events 1 and 2.
const (
	StageProcessed      = "processed"
	StageStockSeparated = "stock_separated"
)

// processingMark is the record's mark of a stage of order.processing.
func processingMark(stage string) events.Kind {
	return events.Kind(string(events.KindOrderProcessing) + "." + stage)
}

// mark is what the record marks published once ev is.
func (ev Event) mark() events.Kind {
	if ev.Mark != "" {
		return ev.Mark
	}
	return ev.Kind
}

// changedAt is when Hiper changed the order: when new events explain the
// change, the date of the newest (never before the last change recorded,
// never in the future); else now. The schedule backs off from when Hiper
// changed, not from when the watcher noticed: an order found long
// processed after a backlog or a restart is not polled as if it were new.
func changedAt(r *Record, st hiper.OrderStatus, now time.Time) time.Time {
	var newest time.Time
	for _, ev := range st.Events {
		if ev.Date.After(newest) {
			newest = ev.Date.Time
		}
	}
	if len(st.Events) <= r.Events || newest.IsZero() || newest.After(now) {
		return now
	}
	if newest.Before(r.ChangedAt) {
		return r.ChangedAt
	}
	return newest
}

// Observe compares Hiper's answer about the order with its record and says
// what to publish. Each kind of event is published once per order: an
// invoice when an event 3 appears, the shipping when an event 4 does, the
// failure on situation 3, the cancellation when Hiper shows it cancelled —
// announced only when the store did not ask for it (the order-forwarder
// announces the store's own). An answer that makes no sense is an error
// matching ErrUnexpectedAnswer. An order still open past Policy.MaxAge
// expires.
func Observe(r *Record, st hiper.OrderStatus, now time.Time, p Policy) (Observation, error) {
	if p.CancelGrace <= 0 {
		p.CancelGrace = DefaultCancelGrace
	}
	if id := strings.TrimSpace(st.ID); id != "" && !strings.EqualFold(id, r.HiperOrderID) {
		return Observation{}, fmt.Errorf("%w: asked for order %s, got %s", ErrUnexpectedAnswer, r.HiperOrderID, id)
	}
	if st.Situation < hiper.SituationProcessing || st.Situation > hiper.SituationFailed {
		return Observation{}, fmt.Errorf("%w: codigoDaSituacaoDeProcessamento %d is not 1, 2 or 3", ErrUnexpectedAnswer, st.Situation)
	}
	o := Observation{situation: st.Situation, cancelled: st.Cancelled, events: len(st.Events), code: strings.TrimSpace(st.Code)}
	code := o.code
	if code == "" {
		code = r.HiperCode
	}
	o.Changed = st.Situation != r.Situation || st.Cancelled != r.HiperCancelled || len(st.Events) != r.Events
	if o.Changed {
		o.changedAt = changedAt(r, st, now)
	}
	var invoice, shipped, cancel, processed, separated *hiper.OrderEvent
	for i := range st.Events {
		ev := &st.Events[i]
		switch ev.Type {
		case hiper.EventInvoiceIssued:
			// A later invoice replaces an earlier one (Hiper reissues after
			// a cancelled invoice): the latest is the order's.
			invoice = ev
		case hiper.EventShipped:
			if shipped == nil {
				shipped = ev
			}
		case hiper.EventCancelled:
			if cancel == nil {
				cancel = ev
			}
		case hiper.EventProcessed:
			if processed == nil {
				processed = ev
			}
		case hiper.EventStockSeparated:
			if separated == nil {
				separated = ev
			}
		default:
			if !slices.Contains(o.Unknown, ev.Type) {
				o.Unknown = append(o.Unknown, ev.Type)
			}
		}
	}
	add := func(kind events.Kind, msg proto.Message, at hiper.Time) {
		o.Events = append(o.Events, Event{Kind: kind, ID: r.EventID(kind), Message: msg, HiperAt: at.Time})
	}
	// Hiper's progress reaches the store (events 1 and 2), each stage once,
	// with Hiper's order number; not for an order Hiper failed.
	for _, sg := range []struct {
		ev    *hiper.OrderEvent
		stage string
	}{{processed, StageProcessed}, {separated, StageStockSeparated}} {
		if sg.ev == nil || st.Situation == hiper.SituationFailed || r.IsPublished(processingMark(sg.stage)) {
			continue
		}
		mark := processingMark(sg.stage)
		o.Events = append(o.Events, Event{Kind: events.KindOrderProcessing, Mark: mark, ID: r.EventID(mark),
			HiperAt: sg.ev.Date.Time, Message: &eventsv1.OrderProcessing{
				OrderId: r.OrderID, HiperOrderId: r.HiperOrderID, HiperOrderCode: code, Stage: sg.stage,
				HiperEventCode: int32(sg.ev.Type), OccurredAt: timestamp(sg.ev.Date), Note: sg.ev.Note,
			}})
	}
	if invoice != nil && !r.IsPublished(events.KindInvoiceIssued) {
		inv := Invoice(r, *invoice)
		inv.HiperOrderCode = code
		add(events.KindInvoiceIssued, inv, invoice.Date)
	}
	if shipped != nil && !r.IsPublished(events.KindOrderShipped) {
		add(events.KindOrderShipped, &eventsv1.OrderShipped{
			OrderId: r.OrderID, HiperOrderId: r.HiperOrderID, TrackingCode: notes.ReadTrackingCode(shipped.Note),
			ShippedAt: timestamp(shipped.Date), Note: shipped.Note, HiperOrderCode: code,
		}, shipped.Date)
	}
	switch {
	case st.Situation == hiper.SituationFailed:
		if !r.IsPublished(events.KindOrderFailed) {
			ev, msg := failure(st)
			// Hiper's text is for the store and the sync log: no CPF/CNPJ or
			// e-mail of the customer it may quote (LGPD).
			msg = personal.Redact(msg)
			add(events.KindOrderFailed, &eventsv1.OrderFailed{OrderId: r.OrderID, HiperOrderId: r.HiperOrderID, Message: msg, HiperOrderCode: code,
				Code: FailedInHiperCode}, ev)
		}
		o.Final = Failed
	case st.Cancelled || cancel != nil:
		var at hiper.Time
		if cancel != nil {
			at = cancel.Date
		}
		observeCancel(&o, r, at, now, p, code, add)
	case (invoice != nil || r.IsPublished(events.KindInvoiceIssued)) && (shipped != nil || r.IsPublished(events.KindOrderShipped)):
		o.Final = Delivered
	}
	if o.Final == "" && p.MaxAge > 0 {
		if exp, ok := Expire(r, now, p.MaxAge); ok {
			o.Events = append(o.Events, exp.Events...)
			o.Final, o.Retry = Expired, 0
		}
	}
	return o, nil
}

// observeCancel decides on a cancellation Hiper shows: the store's own ends
// the watch silently; the merchant's is announced after the grace period.
func observeCancel(o *Observation, r *Record, at hiper.Time, now time.Time, p Policy, code string, add func(events.Kind, proto.Message, hiper.Time)) {
	if !r.StoreCancelAt.IsZero() {
		o.Final, o.CancelOrigin = Cancelled, OriginStore
		return
	}
	seen := r.CancelSeenAt
	if seen.IsZero() {
		seen, o.CancelSeen = now, true
	}
	if wait := p.CancelGrace - now.Sub(seen); wait > 0 {
		o.Retry = wait
		return
	}
	if !r.IsPublished(events.KindOrderCancelled) {
		cancelledAt := at.Time
		if cancelledAt.IsZero() {
			cancelledAt = seen
		}
		add(events.KindOrderCancelled, &eventsv1.OrderCancelled{
			OrderId: r.OrderID, HiperOrderId: r.HiperOrderID, Origin: OriginHiper, CancelledAt: timestamppb.New(cancelledAt),
			HiperOrderCode: code,
		}, at)
	}
	o.Final, o.CancelOrigin = Cancelled, OriginHiper
}

// FailedInHiperCode is the code of the order.failed of an order Hiper
// processed with an error (its situation 3).
const FailedInHiperCode = "hiper_processing_error"

// failure returns Hiper's error message for a failed order: the note of
// the latest event that says something, its date, or a message of ours
// when Hiper said nothing.
func failure(st hiper.OrderStatus) (hiper.Time, string) {
	for i := len(st.Events) - 1; i >= 0; i-- {
		if ev := st.Events[i]; ev.Type == hiper.EventProcessed && strings.TrimSpace(ev.Note) != "" {
			return ev.Date, strings.TrimSpace(ev.Note)
		}
	}
	for i := len(st.Events) - 1; i >= 0; i-- {
		if ev := st.Events[i]; strings.TrimSpace(ev.Note) != "" {
			return ev.Date, strings.TrimSpace(ev.Note)
		}
	}
	msg := strings.Join(st.Errors, "; ")
	if st.Message != nil && strings.TrimSpace(*st.Message) != "" {
		msg = strings.TrimSpace(*st.Message)
	}
	if msg == "" {
		msg = "O Hiper processou o pedido com erro e não informou o motivo."
	}
	return hiper.Time{}, msg
}

// Expire is the observation that ends the watch of an order that was not
// final within maxAge of its acceptance; ok is false while it is younger.
func Expire(r *Record, now time.Time, maxAge time.Duration) (o Observation, ok bool) {
	if now.Sub(r.AcceptedAt) < maxAge {
		return Observation{}, false
	}
	o = Observation{Final: Expired, situation: r.Situation, cancelled: r.HiperCancelled, events: r.Events}
	if !r.IsPublished(events.KindOrderWatchExpired) {
		o.Events = []Event{{
			Kind: events.KindOrderWatchExpired, ID: r.EventID(events.KindOrderWatchExpired),
			Message: &eventsv1.OrderWatchExpired{OrderId: r.OrderID, HiperOrderId: r.HiperOrderID, AcceptedAt: timestamppb.New(r.AcceptedAt),
				HiperOrderCode: r.HiperCode},
		}}
	}
	return o, true
}

// Apply records o on r as of now: the answer seen, the first published of
// o's events (publishing stops at the first failure) and, once all are
// out, how the order ended.
//
// Two polls of one order may record out of order (a task redelivered to a
// second replica while the first still polls): the answer is recorded only
// when it is newer than the one r holds (newerThan), so a poll that loses
// the write to a later one does not put its older answer back on top.
func (r *Record) Apply(o Observation, published int, now time.Time) {
	if o.Changed && o.newerThan(r) {
		r.Situation, r.HiperCancelled, r.Events, r.ChangedAt = o.situation, o.cancelled, o.events, o.changedAt.UTC()
	}
	if o.code != "" {
		r.HiperCode = o.code
	}
	if o.CancelSeen && r.CancelSeenAt.IsZero() {
		r.CancelSeenAt = now.UTC()
	}
	for _, ev := range o.Events[:published] {
		r.MarkPublished(ev.mark(), now)
	}
	if published == len(o.Events) && o.Final != "" {
		r.Final, r.CancelOrigin = o.Final, o.CancelOrigin
	}
}

// newerThan reports whether o's answer is later than the one r recorded.
// Hiper's answer about an order only moves forward: events are added, never
// removed; an order is cancelled once; it leaves processing (situation 1)
// once. So the answer with more events is the later; with as many, the
// cancelled one; then the one out of processing. An answer the same as
// r's, or older, is not; one that differs from it only in a way this order
// cannot place (processed against failed) is, as the latest seen.
func (o Observation) newerThan(r *Record) bool {
	if o.events != r.Events {
		return o.events > r.Events
	}
	if o.cancelled != r.HiperCancelled {
		return o.cancelled
	}
	return o.situation != r.Situation && situationStep(o.situation) >= situationStep(r.Situation)
}

// situationStep orders Hiper's situations as an order goes through them:
// not seen yet, processing, then processed or failed.
func situationStep(situation int) int {
	switch situation {
	case 0:
		return 0
	case hiper.SituationProcessing:
		return 1
	default:
		return 2
	}
}

func timestamp(t hiper.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t.Time)
}

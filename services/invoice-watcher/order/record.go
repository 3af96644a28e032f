// Package order is the invoice-watcher's model of one order that Hiper
// accepted: its record (what was seen and published), the polling schedule
// that backs off as the order ages, and Observe, which turns one answer of
// GET /pedido-de-venda/eventos/{id} into the events to publish. It does no
// I/O: package watcher runs it against NATS and Hiper.
package order

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Final says how an order's watch ended; "" while it is followed.
type Final string

const (
	// Delivered: invoiced and handed to the carrier.
	Delivered Final = "delivered"
	// Cancelled: cancelled in Hiper, by the store's request or by the
	// merchant (CancelOrigin says which).
	Cancelled Final = "cancelled"
	// Failed: Hiper processed the order with an error.
	Failed Final = "failed"
	// Expired: the order was not final within the tenant's watch window.
	Expired Final = "expired"
)

// Origins of a cancellation (OrderCancelled.origin).
const (
	OriginStore = "store"
	OriginHiper = "hiper"
)

// Record is one order as the invoice-watcher follows it, stored as JSON
// under Key(tenant, orderID). The intake (order.accepted, the store's
// cancellations) and the poller write it, always by compare-and-set on its
// revision.
type Record struct {
	Tenant  string `json:"tenant"`
	OrderID string `json:"orderId"`
	// HiperOrderID and AcceptedAt come from order.accepted; a record
	// without them knows only of a store cancellation so far.
	HiperOrderID string    `json:"hiperOrderId,omitempty"`
	AcceptedAt   time.Time `json:"acceptedAt,omitzero"`
	// Round counts the Hiper orders followed for this store order before
	// HiperOrderID, each failed in Hiper and then resent by an operator;
	// it keeps the event ids of one Hiper order apart from another's.
	Round int `json:"round,omitempty"`
	// HiperCode is Hiper's own order number (codigoDoPedidoDeVenda), once
	// Hiper has given one.
	HiperCode string `json:"hiperCode,omitempty"`
	// StoreCancelAt is when the store asked to cancel the order; zero when
	// it did not. A cancellation in Hiper is then the store's, and the
	// order-forwarder announces it.
	StoreCancelAt time.Time `json:"storeCancelAt,omitzero"`

	// Hiper's answer as last seen changed: the situation, whether it was
	// cancelled and how many events it had. ChangedAt is when it changed
	// last (acceptance to start with): the schedule backs off from it.
	Situation      int       `json:"situation,omitempty"`
	HiperCancelled bool      `json:"hiperCancelled,omitempty"`
	Events         int       `json:"events,omitempty"`
	ChangedAt      time.Time `json:"changedAt,omitzero"`
	// CancelSeenAt is when Hiper first showed the order cancelled while the
	// store had not asked: the merchant's cancellation is announced only
	// after a grace period, in case the store's request is still on its way.
	CancelSeenAt time.Time `json:"cancelSeenAt,omitzero"`

	// Published holds when each event kind was published for the order.
	Published map[events.Kind]time.Time `json:"published,omitempty"`
	Final     Final                     `json:"final,omitempty"`
	// CancelOrigin is set with Final Cancelled.
	CancelOrigin string `json:"cancelOrigin,omitempty"`

	// BadAnswer is a digest of the last Hiper answer dead-lettered for the
	// order, so that the same bad answer is recorded once, not every poll.
	BadAnswer string `json:"badAnswer,omitempty"`
	// Turn is the poll the order booked when it was due and its store's
	// calls were spent (Booked).
	Turn *Turn `json:"turn,omitempty"`
	// WrittenAt is when the record was last written; a record is rewritten
	// at least daily while followed, so the bucket's TTL only ever removes
	// records of orders no longer followed.
	WrittenAt time.Time `json:"writtenAt,omitzero"`
}

// Turn is a call to Hiper booked on a replica's pace of the store
// (pace.Book): the order is polled at At, by whichever replica its poll
// task goes to next, without asking the pace again.
type Turn struct {
	At time.Time `json:"at"`
	// Delivery is the delivery count of the poll task that booked the
	// turn: the turn is the task's next delivery's.
	Delivery uint64 `json:"delivery"`
}

// Booked reports whether the poll task's delivery (its delivery count)
// now is the turn r booked: the task's next delivery after the booking,
// not before the turn's time (less skew, the replicas' clocks'
// disagreement). A delivery after that, or before its time (a settle that
// was lost), is not: the order books again.
func (r *Record) Booked(delivery uint64, now time.Time, skew time.Duration) bool {
	return r.Turn != nil && delivery == r.Turn.Delivery+1 && !now.Add(skew).Before(r.Turn.At)
}

// Accepted reports whether order.accepted has been seen.
func (r *Record) Accepted() bool { return r.HiperOrderID != "" }

// IsPublished reports whether an event of kind was published.
func (r *Record) IsPublished(kind events.Kind) bool {
	_, ok := r.Published[kind]
	return ok
}

// MarkPublished records that an event of kind went out at t.
func (r *Record) MarkPublished(kind events.Kind, t time.Time) {
	if r.Published == nil {
		r.Published = map[events.Kind]time.Time{}
	}
	if _, ok := r.Published[kind]; !ok {
		r.Published[kind] = t.UTC()
	}
}

// EventID is the deterministic id of the order's event of kind:
// "<tenant>:<orderId>:<kind>". Each kind is published once per order, so a
// re-publish after a crash is dropped by the stream's duplicate window.
func EventID(tenant, orderID string, kind events.Kind) string {
	return tenant + ":" + orderID + ":" + string(kind)
}

// EventID is the id of r's event of kind: EventID for the first Hiper
// order, with ":<round>" after it for an order resent after Hiper failed it.
func (r *Record) EventID(kind events.Kind) string {
	id := EventID(r.Tenant, r.OrderID, kind)
	if r.Round > 0 {
		id += ":" + strconv.Itoa(r.Round)
	}
	return id
}

// FollowNext reports whether an order.accepted naming hiperID starts a
// new round: r's Hiper order failed, and the operator resent the order,
// which Hiper accepted as hiperID. The next round is returned.
func (r *Record) FollowNext(hiperID string) (*Record, bool) {
	if r.Final != Failed || !r.Accepted() || strings.EqualFold(r.HiperOrderID, hiperID) {
		return nil, false
	}
	return &Record{Tenant: r.Tenant, OrderID: r.OrderID, Round: r.Round + 1, StoreCancelAt: r.StoreCancelAt}, true
}

// ErrInvalidOrderID is an empty order id.
var ErrInvalidOrderID = tenant.ErrInvalidOrderID

// Key returns the bucket key of a tenant's order, tenant.OrderKey: the one
// encoding the order-forwarder uses too.
func Key(tenantID, orderID string) (string, error) { return tenant.OrderKey(tenantID, orderID) }

// Encode encodes r for the bucket.
func (r *Record) Encode() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode order record: %w", err)
	}
	return b, nil
}

// Decode decodes a record as stored.
func Decode(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode order record: %w", err)
	}
	if r.Tenant == "" || r.OrderID == "" {
		return nil, errors.New("decode order record: no tenant or order id")
	}
	return &r, nil
}

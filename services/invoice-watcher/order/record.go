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

	// Polls counts the calls to Hiper for the order.
	Polls int `json:"polls,omitempty"`
	// BadAnswer is a digest of the last Hiper answer dead-lettered for the
	// order, so that the same bad answer is recorded once, not every poll.
	BadAnswer string `json:"badAnswer,omitempty"`
	// WrittenAt is when the record was last written; a record is rewritten
	// at least daily while followed, so the bucket's TTL only ever removes
	// records of orders no longer followed.
	WrittenAt time.Time `json:"writtenAt,omitzero"`
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

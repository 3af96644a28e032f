// Package orders is the per-order state machine of the order-forwarder, kept
// in a JetStream key-value bucket with compare-and-set on the revision. The
// forwarder moves orders through it; the operator CLI (`hipersync orders`)
// reads it and settles the orders a person must look at. See
// docs/order-forwarder.md for the states and what each outcome means.
package orders

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/personal"
)

// State is where an order stands.
type State string

const (
	// Received: the approval is recorded and the order is waiting to be
	// sent (first sight after a wait, a retry after a failure that surely
	// did not reach Hiper, or an operator's resend).
	StateReceived State = "received"
	// Sending: a replica recorded it is about to POST the order; Owner and
	// LeaseUntil say who and until when. Found with an expired lease, the
	// POST's outcome is unknown.
	StateSending State = "sending"
	// Accepted: Hiper answered with its id.
	StateAccepted State = "accepted"
	// Rejected: hipersync's validation or Hiper refused the order; it is
	// not in Hiper.
	StateRejected State = "rejected"
	// NeedsReview: whether Hiper has the order cannot be known; a person
	// settles it (`hipersync orders resolve`).
	StateNeedsReview State = "needs_review"
	// Failed: retries ran out before the order ever reached Hiper.
	StateFailed State = "failed"
	// Cancelling: a replica is asking Hiper to cancel an accepted order.
	StateCancelling State = "cancelling"
	// Cancelled: cancelled in Hiper, or before it was ever sent.
	StateCancelled State = "cancelled"
)

// States lists every state, in the order an order goes through them.
var States = []State{StateReceived, StateSending, StateAccepted, StateRejected, StateNeedsReview,
	StateFailed, StateCancelling, StateCancelled}

// ValidState reports whether s names a state.
func ValidState(s string) bool {
	for _, st := range States {
		if string(st) == s {
			return true
		}
	}
	return false
}

// Record is one order's state as stored, JSON-encoded, under Key(tenant,
// orderId).
type Record struct {
	Tenant  string `json:"tenant"`
	OrderID string `json:"orderId"`
	State   State  `json:"state"`
	// Generation counts fresh starts of the order (an operator's resend, a
	// corrected approval of a rejected order). It is part of every outcome
	// event id, so a new outcome is never taken for a duplicate of an old
	// one.
	Generation   int    `json:"generation"`
	HiperOrderID string `json:"hiperOrderId,omitempty"`
	// HiperFailure is set when Hiper processed the order HiperOrderID
	// names with an error (the invoice-watcher's order.failed): Hiper
	// holds it, failed, and will not act on it, so an operator may resend
	// the order once (a new Hiper order); see Operator.Resend.
	HiperFailure *HiperFailure `json:"hiperFailure,omitempty"`
	// Products are the Hiper products the order names, kept from its
	// acceptance so that its cancellation can refresh their stock too.
	Products []string `json:"products,omitempty"`
	// Owner and LeaseUntil are set in Sending and Cancelling: the replica
	// acting on the order, and until when it may still be doing so.
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
	// Attempts counts the tries of this generation that failed before the
	// order reached Hiper; they are bounded.
	Attempts int `json:"attempts,omitempty"`
	// Reasons are a rejection's problems.
	Reasons []Reason `json:"reasons,omitempty"`
	// Reason says, for a person, why the order needs review or failed.
	Reason string `json:"reason,omitempty"`
	// LastError is the last failure, kept for `orders show`.
	LastError string `json:"lastError,omitempty"`
	// SentAt is when the last attempt posted the order to Hiper, and Answer
	// what came back (a status, a page, a reset): what a person settling
	// an order under review needs to look it up in Hiper.
	SentAt time.Time `json:"sentAt,omitzero"`
	Answer string    `json:"answer,omitempty"`
	// Cancel is set once the store asked to cancel the order.
	Cancel *CancelRequest `json:"cancel,omitempty"`
	// CancelOrigin says, once cancelled, who cancelled it, as the
	// order.cancelled event did: "store" (the store asked) or "hiper" (the
	// merchant cancelled it in Hiper, seen by the invoice-watcher).
	CancelOrigin string `json:"cancelOrigin,omitempty"`
	// Approval is the store's StoreOrderApproved as protobuf: what an
	// operator's resend puts back on the stream. ApprovalHash tells a
	// corrected approval from a duplicate.
	Approval     []byte `json:"approval,omitempty"`
	ApprovalHash string `json:"approvalHash,omitempty"`
	// Outbox is the outcome event the record's state calls for. It is
	// written with the state and published after, so a crash in between
	// only delays it: whoever next sees Published false publishes it, with
	// the same id.
	Outbox    *Outbox      `json:"outbox,omitempty"`
	History   []Transition `json:"history,omitempty"`
	CreatedAt time.Time    `json:"createdAt"`
	UpdatedAt time.Time    `json:"updatedAt"`
	// PersonalDataRemovedAt is when the customer's data was dropped from
	// the record, a retention after it was settled (RemovePersonalData).
	PersonalDataRemovedAt time.Time `json:"personalDataRemovedAt,omitzero"`
}

// Reason is one problem of a rejected order (RejectionReason).
type Reason struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// CancelRequest is the store's cancellation of the order.
type CancelRequest struct {
	Reason      string    `json:"reason,omitempty"`
	RequestedAt time.Time `json:"requestedAt"`
	// Event is the StoreOrderCancelled as protobuf, re-queued when an
	// operator resolves an order that was cancelled while under review.
	Event []byte `json:"event,omitempty"`
	// Error is Hiper's last answer to the cancellation, when it failed.
	Error string `json:"error,omitempty"`
	// Attempts counts cancellations that failed without Hiper's refusal.
	Attempts int `json:"attempts,omitempty"`
}

// Outbox is an outcome event waiting to be, or already, published.
type Outbox struct {
	ID        string      `json:"id"`
	Kind      events.Kind `json:"kind"`
	Payload   []byte      `json:"payload"`
	Published bool        `json:"published"`
}

// Transition is one step of the order's history.
type Transition struct {
	At   time.Time `json:"at"`
	From State     `json:"from,omitempty"`
	To   State     `json:"to"`
	By   string    `json:"by,omitempty"`
	Note string    `json:"note,omitempty"`
}

// maxHistory bounds the history kept per order; the oldest steps go first.
const maxHistory = 32

// Move puts the record in state to, noting who moved it and why.
func (r *Record) Move(to State, by, note string, now time.Time) {
	r.History = append(r.History, Transition{At: now.UTC(), From: r.State, To: to, By: by, Note: note})
	if len(r.History) > maxHistory {
		r.History = append(r.History[:0], r.History[len(r.History)-maxHistory:]...)
	}
	r.State = to
	r.UpdatedAt = now.UTC()
	if to != StateSending && to != StateCancelling {
		r.Owner, r.LeaseUntil = "", time.Time{}
	}
}

// Leased reports whether a replica may still be acting on the order.
func (r *Record) Leased(now time.Time) bool {
	return (r.State == StateSending || r.State == StateCancelling) && now.Before(r.LeaseUntil)
}

// SetApproval stores the approval an operator's resend would re-queue.
func (r *Record) SetApproval(a *eventsv1.StoreOrderApproved) error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode approval: %w", err)
	}
	r.Approval = b
	r.ApprovalHash = hashOf(b)
	return nil
}

// ApprovalMessage decodes the stored approval.
func (r *Record) ApprovalMessage() (*eventsv1.StoreOrderApproved, error) {
	if len(r.Approval) == 0 {
		return nil, errors.New("no approval stored")
	}
	a := &eventsv1.StoreOrderApproved{}
	if err := proto.Unmarshal(r.Approval, a); err != nil {
		return nil, fmt.Errorf("decode stored approval: %w", err)
	}
	return a, nil
}

// ApprovalHashOf returns the hash SetApproval records for a.
func ApprovalHashOf(a *eventsv1.StoreOrderApproved) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(a)
	if err != nil {
		return ""
	}
	return hashOf(b)
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Emit sets the outbox to msg, the outcome event of the record's current
// state. tag tells apart two events of one kind in one generation (e.g. a
// needs_review about a cancellation); it is usually empty.
func (r *Record) Emit(msg proto.Message, tag string) error {
	_, kind, err := events.KindOf(msg)
	if err != nil {
		return err
	}
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	key, err := Key(r.Tenant, r.OrderID)
	if err != nil {
		return err
	}
	id := fmt.Sprintf("order.%s.%d.%s", key, r.Generation, kind)
	if tag != "" {
		id += "." + tag
	}
	r.Outbox = &Outbox{ID: id, Kind: kind, Payload: payload}
	return nil
}

// OutboxMessage decodes the outbox's event.
func (o *Outbox) OutboxMessage() (proto.Message, error) {
	msg, err := events.NewMessage(events.SourceHiper, o.Kind)
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(o.Payload, msg); err != nil {
		return nil, fmt.Errorf("decode outbox %s: %w", o.ID, err)
	}
	return msg, nil
}

// RejectionReasons converts the record's reasons for OrderRejected.
func (r *Record) RejectionReasons() []*eventsv1.RejectionReason {
	out := make([]*eventsv1.RejectionReason, 0, len(r.Reasons))
	for _, rr := range r.Reasons {
		out = append(out, &eventsv1.RejectionReason{Code: rr.Code, Field: rr.Field, Message: rr.Message})
	}
	return out
}

// HiperFailure is Hiper's order.failed of one Hiper order.
type HiperFailure struct {
	HiperOrderID string    `json:"hiperOrderId"`
	At           time.Time `json:"at"`
	// Message is Hiper's text, without the customer's data (the
	// invoice-watcher redacts it).
	Message string `json:"message,omitempty"`
}

// FailedInHiper reports whether Hiper declared the order it holds for r
// failed: r is accepted and its Hiper order is the one that failed.
func (r *Record) FailedInHiper() bool {
	return r.State == StateAccepted && r.HiperFailure != nil && r.HiperFailure.HiperOrderID == r.HiperOrderID
}

// ReviewText is the reason of an order under review, for a person: what was
// sent and when, what came back, and the two ways out. It goes into the
// order.needs_review event, the record and every screen that shows it, so it
// names no customer (LGPD): who the customer is, `hipersync orders show`
// says, masking the document.
func (r *Record) ReviewText(what, answer string) string {
	return fmt.Sprintf("%s: não é possível saber se o pedido foi criado no Hiper. Enviado em %s (tentativa %d): %s; resposta: %s. "+
		"Procure o pedido no Hiper pelo cliente (veja `hipersync orders show %s %s`), a data e o total e então: "+
		"se ele estiver lá, `hipersync orders resolve %s %s --hiper-id <id no Hiper>`; "+
		"se não estiver, `hipersync orders resolve %s %s --resend`.",
		what, r.SentAt.UTC().Format(time.RFC3339), r.Attempts, r.SentSummary(), answer,
		r.Tenant, r.OrderID, r.Tenant, r.OrderID, r.Tenant, r.OrderID)
}

// SentSummary says what the order sent holds, for finding it in Hiper beside
// the customer `orders show` names: the items and the amount paid, in the
// order's currency. No name, document, e-mail or address: it is part of the
// reason.
func (r *Record) SentSummary() string {
	a, err := r.ApprovalMessage()
	if err != nil {
		return "conteúdo não guardado"
	}
	paid := decimal.Zero
	for _, p := range a.GetPayments() {
		if d, err := decimal.NewFromString(p.GetAmount()); err == nil && len(p.GetAmount()) <= 32 {
			paid = paid.Add(d)
		}
	}
	currency := a.GetCurrency()
	if currency == "" {
		currency = "BRL"
	}
	return fmt.Sprintf("%d item(ns), pagamentos %s %s", len(a.GetItems()), currency, paid.StringFixed(2))
}

// Masked is a copy of r whose stored approval names no customer: its
// document, e-mail, names, addresses and notes masked as the sync log
// shows them (personal.MaskEvent); r itself when it has no readable
// approval.
func (r *Record) Masked() *Record {
	a, err := r.ApprovalMessage()
	if err != nil {
		return r
	}
	personal.MaskEvent(a)
	b, err := proto.Marshal(a)
	if err != nil {
		return r
	}
	c := *r
	c.Approval = b
	return &c
}

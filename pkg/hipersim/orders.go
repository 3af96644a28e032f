package hipersim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// Messages Hiper gives for sales orders.
const (
	msgOrderReceived     = "Pedido recebido e em processamento."
	msgCancelReceived    = "Cancelamento recebido e em processamento."
	noteProcessed        = "Pedido processado"
	noteCancelledByStore = "Cancelamento efetuado pela integração com e-commerce."
	noteCancelledInHiper = "Pedido cancelado no Hiper."
	noteFailed           = "Erro ao processar o pedido de venda."
)

// maxOrderBody bounds a sales order body; Hiper's are a few kilobytes.
const maxOrderBody = 1 << 20

// Order is a sales order as the Sim holds it: what the store sent and what
// Hiper would answer about it now.
type Order struct {
	ID      string            `json:"id"`
	Created time.Time         `json:"created"`
	Body    hiper.SalesOrder  `json:"body"`
	Status  hiper.OrderStatus `json:"status"`
}

// order is a sales order's state. Processing is not scheduled: an unsettled
// order is processed once its processAt has passed, computed when read.
type order struct {
	id        string
	code      string
	body      hiper.SalesOrder
	created   time.Time
	processAt time.Time

	// settled means situation and events are final as stored; before, the
	// order is in situation 1 until processAt and in 2 after.
	settled   bool
	situation int
	events    []hiper.OrderEvent
	cancelled bool
	// reserved means the order still holds the stock it reserved.
	reserved bool
}

// status is the order as GET /pedido-de-venda/eventos/{id} answers it at now.
func (o *order) status(now time.Time) hiper.OrderStatus {
	st := hiper.OrderStatus{
		Cancelled: o.cancelled,
		Situation: o.situation,
		Code:      o.code,
		Date:      hiper.Time{Time: o.created},
		Events:    slices.Clone(o.events),
		ID:        o.id,
		Answer:    hiper.Answer{Errors: []string{}},
	}
	if !o.settled {
		st.Situation = hiper.SituationProcessing
		st.Events = []hiper.OrderEvent{}
		if !now.Before(o.processAt) {
			st.Situation = hiper.SituationProcessed
			st.Events = []hiper.OrderEvent{processedEvent(o.processAt)}
		}
	}
	if st.Events == nil {
		st.Events = []hiper.OrderEvent{}
	}
	return st
}

func processedEvent(at time.Time) hiper.OrderEvent {
	return hiper.OrderEvent{Type: hiper.EventProcessed, Date: hiper.Time{Time: at}, Note: noteProcessed}
}

// settle fixes the processing outcome before the order changes otherwise:
// Hiper processes an order before it can be invoiced or cancelled.
func (o *order) settle(now time.Time) {
	if o.settled {
		return
	}
	o.settled = true
	o.situation = hiper.SituationProcessed
	o.events = append(o.events, processedEvent(minTime(now, o.processAt)))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// handleCreateOrder serves POST /pedido-de-venda/.
func (s *Sim) handleCreateOrder(w http.ResponseWriter, r *http.Request, a *account) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOrderBody))
	if err != nil {
		writeOrderAnswer(w, http.StatusBadRequest, "", "Corpo da requisição inválido ou grande demais.")
		return
	}
	var so hiper.SalesOrder
	if err := json.Unmarshal(body, &so); err != nil {
		writeOrderAnswer(w, http.StatusBadRequest, "", "JSON do pedido de venda inválido: "+err.Error())
		return
	}
	if problems := validateOrder(&so); len(problems) > 0 {
		writeOrderAnswer(w, http.StatusBadRequest, "", problems...)
		return
	}
	id, problems := a.createOrder(so, s.now(), s.cfg.ProcessingDelay)
	if len(problems) > 0 {
		// Hiper's quirk: a rejected order can come back with status 200 and
		// only the errors list telling it failed.
		writeOrderAnswer(w, http.StatusOK, "", problems...)
		return
	}
	if fs := s.faults.Load(); fs.lostAnswer() {
		writeFault(w, r, fs, true)
		return
	}
	writeBody(w, http.StatusOK, []byte(`{"id":"`+id+`","errors":[],"message":"`+msgOrderReceived+`"}`))
}

// writeOrderAnswer answers an order creation that failed: no id.
func writeOrderAnswer(w http.ResponseWriter, status int, id string, problems ...string) {
	var idp *string
	if id != "" {
		idp = &id
	}
	writeJSON(w, status, struct {
		ID      *string  `json:"id"`
		Errors  []string `json:"errors"`
		Message *string  `json:"message"`
	}{idp, problems, nil})
}

// createOrder checks the items against the catalog, reserves their stock
// and records the order in situation 1. It returns the problems instead
// when an item cannot be sold.
func (a *account) createOrder(so hiper.SalesOrder, now time.Time, delay time.Duration) (string, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	entries := make([]*productEntry, len(so.Items))
	var problems []string
	for i, it := range so.Items {
		e := a.products[normalizeID(it.ProductID)]
		switch {
		case e == nil:
			problems = append(problems, fmt.Sprintf("itens[%d].produtoId: produto %s não encontrado.", i, it.ProductID))
		case !bool(e.p.Active) || bool(e.p.Removed):
			problems = append(problems, fmt.Sprintf("itens[%d].produtoId: produto %s está inativo.", i, it.ProductID))
		case len(a.children[e.p.ID]) > 0:
			problems = append(problems, fmt.Sprintf("itens[%d].produtoId: produto %s possui grade; informe a variação.", i, it.ProductID))
		}
		entries[i] = e
	}
	if len(problems) > 0 {
		return "", problems
	}
	for i, e := range entries {
		e.p.Stock = hiper.Decimal{Decimal: e.p.Stock.Sub(so.Items[i].Quantity.Decimal)}
		a.touchWithParent(e)
	}
	a.orderSeq++
	o := &order{
		id:        newUUID(),
		code:      fmt.Sprintf("LV%011d", a.orderSeq),
		body:      so,
		created:   now,
		processAt: now.Add(delay),
		reserved:  true,
	}
	a.orders[o.id] = o
	a.orderList = append(a.orderList, o)
	a.compact()
	return o.id, nil
}

// release gives back the stock an order reserved, once. Callers hold a.mu
// for writing.
func (a *account) release(o *order) {
	if !o.reserved {
		return
	}
	o.reserved = false
	for _, it := range o.body.Items {
		if e := a.products[normalizeID(it.ProductID)]; e != nil {
			e.p.Stock = hiper.Decimal{Decimal: e.p.Stock.Add(it.Quantity.Decimal)}
			a.touchWithParent(e)
		}
	}
	a.compact()
}

// orderStatus is what Hiper would answer now about order id of a; false
// when a has no such order.
func (s *Sim) orderStatus(a *account, id string) (hiper.OrderStatus, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	o := a.orders[normalizeID(id)]
	if o == nil {
		return hiper.OrderStatus{}, false
	}
	return o.status(s.now()), true
}

// handleOrderEvents serves GET /pedido-de-venda/eventos/{id}.
func (s *Sim) handleOrderEvents(w http.ResponseWriter, r *http.Request, a *account) {
	st, ok := s.orderStatus(a, r.PathValue("id"))
	if !ok {
		writeErrors(w, http.StatusNotFound, "Pedido de venda não encontrado.")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// handleCancelOrder serves PUT /pedido-de-venda/cancelar/{id}.
func (s *Sim) handleCancelOrder(w http.ResponseWriter, r *http.Request, a *account) {
	ev := hiper.OrderEvent{Type: hiper.EventCancelled, Note: noteCancelledByStore}
	if err := a.addEvent(r.PathValue("id"), ev, s.now()); err != nil {
		if errors.Is(err, ErrUnknownOrder) {
			writeErrors(w, http.StatusNotFound, "Pedido de venda não encontrado.")
			return
		}
		writeErrors(w, http.StatusInternalServerError, "Erro interno do simulador: "+err.Error())
		return
	}
	msg := msgCancelReceived
	writeJSON(w, http.StatusOK, hiper.CancelAnswer{Answer: hiper.Answer{Errors: []string{}, Message: &msg}})
}

// addEvent appends ev to an order, settling its processing first. Event 99
// cancels the order and gives its stock back; on an order already
// cancelled it does nothing, so a second cancellation adds no second 99.
func (a *account) addEvent(orderID string, ev hiper.OrderEvent, now time.Time) error {
	switch ev.Type {
	case hiper.EventStockSeparated, hiper.EventInvoiceIssued, hiper.EventShipped, hiper.EventCancelled:
	default:
		return fmt.Errorf("%w: codigoDoTipoDeEvento %d is not one of 2, 3, 4, 99", ErrInvalid, ev.Type)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	o := a.orders[normalizeID(orderID)]
	if o == nil {
		return ErrUnknownOrder
	}
	if ev.Type == hiper.EventCancelled && o.cancelled {
		return nil
	}
	o.settle(now)
	if ev.Date.IsZero() {
		ev.Date = hiper.Time{Time: now}
	}
	if ev.Type == hiper.EventCancelled {
		if ev.Note == "" {
			ev.Note = noteCancelledInHiper
		}
		o.cancelled = true
		a.release(o)
	}
	o.events = append(o.events, ev)
	return nil
}

// fail marks an order processed with error (situation 3), the error in an
// event 1's observacao, and gives its stock back.
func (a *account) fail(orderID, note string, now time.Time) error {
	if strings.TrimSpace(note) == "" {
		note = noteFailed
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	o := a.orders[normalizeID(orderID)]
	if o == nil {
		return ErrUnknownOrder
	}
	o.settled = true
	o.situation = hiper.SituationFailed
	o.events = append(o.events, hiper.OrderEvent{Type: hiper.EventProcessed, Date: hiper.Time{Time: now}, Note: note})
	a.release(o)
	return nil
}

// list returns every order received, oldest first, as it stands at now.
func (a *account) list(now time.Time) []Order {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]Order, 0, len(a.orderList))
	for _, o := range a.orderList {
		body := o.body
		body.Items = slices.Clone(body.Items)
		body.Payments = slices.Clone(body.Payments)
		out = append(out, Order{ID: o.id, Created: o.created, Body: body, Status: o.status(now)})
	}
	return out
}

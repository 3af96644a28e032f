package hiper

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

var (
	epCreateOrder = &endpoint{
		op:     "post sales order",
		method: http.MethodPost,
		name:   "POST /pedido-de-venda/",
		unsafe: true,
		plain:  plainCreated,
	}
	epOrderStatus = &endpoint{
		op:     "get sales order status",
		method: http.MethodGet,
		name:   "GET /pedido-de-venda/eventos/{id}",
	}
	epCancelOrder = &endpoint{
		op:      "cancel sales order",
		method:  http.MethodPut,
		name:    "PUT /pedido-de-venda/cancelar/{id}",
		emptyOK: true,
	}
)

// CreateSalesOrder posts order and returns the id Hiper gave it. Hiper
// processes it later (see SalesOrderStatus) and has no idempotency key: a
// failure matching ErrOutcomeUnknown may have created the order, and posting
// it again would create a second one.
func (c *Client) CreateSalesOrder(ctx context.Context, token string, order SalesOrder) (string, error) {
	req := request{ep: epCreateOrder, path: "/pedido-de-venda/", body: order, token: token, personal: order.personal()}
	var out CreateOrderAnswer
	status, err := c.call(ctx, req, &out)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out.ID)
	if id == "" {
		return "", &Error{
			Op: epCreateOrder.op, Endpoint: epCreateOrder.name, Status: status, Kind: ErrBadResponse,
			Err: errors.New("answer has no order id"), Message: out.messageText(), outcomeUnknown: true,
		}
	}
	return id, nil
}

// SalesOrderStatus reads the processing state and history of an order.
func (c *Client) SalesOrderStatus(ctx context.Context, token, hiperOrderID string) (OrderStatus, error) {
	if strings.TrimSpace(hiperOrderID) == "" {
		return OrderStatus{}, errors.New("get sales order status: empty order id")
	}
	req := request{ep: epOrderStatus, path: "/pedido-de-venda/eventos/" + url.PathEscape(hiperOrderID), token: token}
	var out OrderStatus
	if _, err := c.call(ctx, req, &out); err != nil {
		return OrderStatus{}, err
	}
	return out, nil
}

// CancelSalesOrder asks Hiper to cancel an order. Hiper only acknowledges
// it: the cancellation shows later in SalesOrderStatus, as Cancelled and an
// EventCancelled event.
func (c *Client) CancelSalesOrder(ctx context.Context, token, hiperOrderID string) error {
	if strings.TrimSpace(hiperOrderID) == "" {
		return errors.New("cancel sales order: empty order id")
	}
	req := request{ep: epCancelOrder, path: "/pedido-de-venda/cancelar/" + url.PathEscape(hiperOrderID), token: token}
	_, err := c.call(ctx, req, nil)
	return err
}

func (a Answer) messageText() string {
	if a.Message == nil {
		return ""
	}
	return *a.Message
}

// personal lists what of order names or locates its customer, for
// personal.Redact.
func (o SalesOrder) personal() []string {
	c := o.Customer
	out := []string{string(c.Document), c.Email, c.Name, c.TradeName, string(c.StateRegistration)}
	for _, a := range []Address{o.BillingAddress, o.ShippingAddress} {
		out = append(out, a.Street, a.Complement)
	}
	return out
}

// plainCreated: a 2xx answer that decodes as an object with an id and no
// error text is a created order, as the full classification would find it
// (which parses the answer twice more: the envelope, then the answer).
func plainCreated(out any) bool {
	a := out.(*CreateOrderAnswer)
	return strings.TrimSpace(a.ID) != "" && len(a.Errors) == 0
}

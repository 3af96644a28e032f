package hipersim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// ControlClient drives the control API of a hiper-sim running as its own
// process. Its methods mirror the Sim's in-process control methods.
type ControlClient struct {
	base string
	hc   *http.Client
}

// NewControlClient returns a client of the hiper-sim at baseURL (its root,
// e.g. http://127.0.0.1:8089). A nil hc means http.DefaultClient.
func NewControlClient(baseURL string, hc *http.Client) *ControlClient {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &ControlClient{base: strings.TrimRight(baseURL, "/"), hc: hc}
}

// ControlError is a failure answered by the control API.
type ControlError struct {
	Status int
	Errors []string
}

func (e *ControlError) Error() string {
	return fmt.Sprintf("hiper-sim answered %d: %s", e.Status, strings.Join(e.Errors, "; "))
}

// Is lets errors.Is match a ControlError to the Sim's sentinel errors, so
// callers handle the in-process and the HTTP control API alike.
func (e *ControlError) Is(target error) bool {
	switch target {
	case ErrUnknownAccount, ErrUnknownProduct, ErrUnknownOrder:
		return e.Status == http.StatusNotFound && strings.Contains(e.msg(), target.Error())
	case ErrInvalid:
		return e.Status == http.StatusBadRequest
	case ErrAccountExists:
		return e.Status == http.StatusConflict
	}
	return false
}

func (e *ControlError) msg() string { return strings.Join(e.Errors, " ") }

// AddAccount creates an account for key with seed SeedDemo or SeedEmpty.
func (c *ControlClient) AddAccount(ctx context.Context, key, seed string) error {
	var body any
	if seed != "" {
		body = accountBody{Seed: seed}
	}
	if err := c.do(ctx, http.MethodPost, c.accountPath(key, ""), body, nil); err != nil {
		return fmt.Errorf("add account: %w", err)
	}
	return nil
}

// UpsertProducts creates or replaces products of the account.
func (c *ControlClient) UpsertProducts(ctx context.Context, key string, products []hiper.Product) error {
	if products == nil {
		products = []hiper.Product{}
	}
	if err := c.do(ctx, http.MethodPut, c.accountPath(key, "/products"), products, nil); err != nil {
		return fmt.Errorf("upsert products: %w", err)
	}
	return nil
}

// SetStock sets a product's stock.
func (c *ControlClient) SetStock(ctx context.Context, key, productID string, quantity hiper.Decimal) error {
	body := stockBody{ProductID: productID, Quantity: &quantity}
	if err := c.do(ctx, http.MethodPost, c.accountPath(key, "/stock"), body, nil); err != nil {
		return fmt.Errorf("set stock: %w", err)
	}
	return nil
}

// UnlistProduct takes a product out of the feed (Sim.UnlistProduct).
func (c *ControlClient) UnlistProduct(ctx context.Context, key, productID string) error {
	if err := c.do(ctx, http.MethodDelete, c.accountPath(key, "/products/"+url.PathEscape(productID)), nil, nil); err != nil {
		return fmt.Errorf("unlist product: %w", err)
	}
	return nil
}

// AddOrderEvent appends an event to an order; the event's date is the
// Sim's now.
func (c *ControlClient) AddOrderEvent(ctx context.Context, key, orderID string, ev hiper.OrderEvent) error {
	body := eventBody{Type: ev.Type, Note: ev.Note, FiscalKey: ev.FiscalKey,
		FiscalType: ev.FiscalType, FiscalXMLURL: ev.FiscalXMLURL}
	path := c.accountPath(key, "/orders/"+url.PathEscape(orderID)+"/events")
	if err := c.do(ctx, http.MethodPost, path, body, nil); err != nil {
		return fmt.Errorf("add order event: %w", err)
	}
	return nil
}

// FailOrder makes an order processed with error, note being the error.
func (c *ControlClient) FailOrder(ctx context.Context, key, orderID, note string) error {
	path := c.accountPath(key, "/orders/"+url.PathEscape(orderID)+"/fail")
	if err := c.do(ctx, http.MethodPost, path, failBody{Note: note}, nil); err != nil {
		return fmt.Errorf("fail order: %w", err)
	}
	return nil
}

// Orders returns every order the account received, oldest first.
func (c *ControlClient) Orders(ctx context.Context, key string) ([]Order, error) {
	var orders []Order
	if err := c.do(ctx, http.MethodGet, c.accountPath(key, "/orders"), nil, &orders); err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	return orders, nil
}

// Products returns the account's current catalog.
func (c *ControlClient) Products(ctx context.Context, key string) ([]hiper.Product, error) {
	var products []hiper.Product
	if err := c.do(ctx, http.MethodGet, c.accountPath(key, "/products"), nil, &products); err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return products, nil
}

// Stats returns the Sim's counters.
func (c *ControlClient) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	if err := c.do(ctx, http.MethodGet, "/_sim/stats", nil, &st); err != nil {
		return Stats{}, fmt.Errorf("get stats: %w", err)
	}
	return st, nil
}

// SetFaults replaces the whole fault set.
func (c *ControlClient) SetFaults(ctx context.Context, f Faults) error {
	if err := c.do(ctx, http.MethodPut, "/_sim/faults", f, nil); err != nil {
		return fmt.Errorf("set faults: %w", err)
	}
	return nil
}

// Faults returns the current fault set.
func (c *ControlClient) Faults(ctx context.Context) (Faults, error) {
	var f Faults
	if err := c.do(ctx, http.MethodGet, "/_sim/faults", nil, &f); err != nil {
		return Faults{}, fmt.Errorf("get faults: %w", err)
	}
	return f, nil
}

func (c *ControlClient) accountPath(key, rest string) string {
	return "/_sim/accounts/" + url.PathEscape(key) + rest
}

// do sends body (when not nil) as JSON and decodes a 2xx answer into out
// (when not nil); any other answer is a *ControlError.
func (c *ControlClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode body: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var ans errorAnswer
		if json.Unmarshal(b, &ans) != nil || len(ans.Errors) == 0 {
			ans.Errors = []string{strings.TrimSpace(string(b))}
		}
		return &ControlError{Status: resp.StatusCode, Errors: ans.Errors}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

package hipersim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// The in-process control API. Each method has the semantics of its HTTP
// counterpart under /_sim.

// UpsertProducts creates or replaces products of the account, in order,
// each taking a new sync point. A parent's variacao is derived from its
// variations; from a parent given here only the variation axes
// (tipoVariacaoA/B, nomeVariacaoA/B) of each variacao entry are kept.
func (s *Sim) UpsertProducts(key string, products []hiper.Product) error {
	a, err := s.account(key)
	if err == nil {
		err = a.upsert(products)
	}
	if err != nil {
		return fmt.Errorf("upsert products: %w", err)
	}
	return nil
}

// SetStock sets a product's stock, moving its sync point.
func (s *Sim) SetStock(key, productID string, quantity hiper.Decimal) error {
	a, err := s.account(key)
	if err == nil {
		err = a.setStock(productID, quantity)
	}
	if err != nil {
		return fmt.Errorf("set stock: %w", err)
	}
	return nil
}

// UnlistProduct takes a product (a parent with its variations) out of the
// feed, as unticking "Enviar produto para loja virtual" does in Hiper. An
// upsert lists it again.
func (s *Sim) UnlistProduct(key, productID string) error {
	a, err := s.account(key)
	if err == nil {
		err = a.unlist(productID)
	}
	if err != nil {
		return fmt.Errorf("unlist product: %w", err)
	}
	return nil
}

// SetReserved sets a variation's quantidadeEmEstoqueReservado, which its
// parent's variacao reports.
func (s *Sim) SetReserved(key, productID string, reserved hiper.Decimal) error {
	a, err := s.account(key)
	if err == nil {
		err = a.setReserved(productID, reserved)
	}
	if err != nil {
		return fmt.Errorf("set reserved stock: %w", err)
	}
	return nil
}

// AddOrderEvent appends an event to an order as Hiper would: 2 stock
// separated, 3 invoice issued, 4 handed to the carrier, 99 cancelled in Hiper
// by the merchant (cancelado becomes true and the stock comes back). A zero
// ev.Date is now.
func (s *Sim) AddOrderEvent(key, orderID string, ev hiper.OrderEvent) error {
	a, err := s.account(key)
	if err == nil {
		err = a.addEvent(orderID, ev, s.now())
	}
	if err != nil {
		return fmt.Errorf("add order event: %w", err)
	}
	return nil
}

// CreateOrder takes an order as POST /pedido-de-venda/ does, without the
// HTTP round trip, and returns its id: for a test that needs many open
// orders before it measures something else.
func (s *Sim) CreateOrder(key string, so hiper.SalesOrder) (string, error) {
	a, err := s.account(key)
	if err != nil {
		return "", fmt.Errorf("create order: %w", err)
	}
	if problems := validateOrder(&so); len(problems) > 0 {
		return "", fmt.Errorf("create order: %s", strings.Join(problems, "; "))
	}
	id, problems := a.createOrder(so, s.now(), s.cfg.ProcessingDelay)
	if len(problems) > 0 {
		return "", fmt.Errorf("create order: %s", strings.Join(problems, "; "))
	}
	return id, nil
}

// FailOrder makes an order processed with error (situation 3), note being
// the error Hiper reports.
func (s *Sim) FailOrder(key, orderID, note string) error {
	a, err := s.account(key)
	if err == nil {
		err = a.fail(orderID, note, s.now())
	}
	if err != nil {
		return fmt.Errorf("fail order: %w", err)
	}
	return nil
}

// Orders returns every order the account received, oldest first; nil for
// an unknown account.
func (s *Sim) Orders(key string) []Order {
	a, err := s.account(key)
	if err != nil {
		return nil
	}
	return a.list(s.now())
}

// Products returns the account's current catalog as the feed shows it, in
// sync-point order; nil for an unknown account.
func (s *Sim) Products(key string) []hiper.Product {
	a, err := s.account(key)
	if err != nil {
		return nil
	}
	return a.catalog()
}

// The HTTP control API.

// Bodies of the control API.
type (
	stockBody struct {
		ProductID string         `json:"produtoId"`
		Quantity  *hiper.Decimal `json:"quantidade"`
		// Reserved sets quantidadeEmEstoqueReservado too, when given.
		Reserved *hiper.Decimal `json:"reservado,omitempty"`
	}
	eventBody struct {
		Type         int    `json:"codigoDoTipoDeEvento"`
		Note         string `json:"observacao"`
		FiscalKey    string `json:"chaveDocumentoFiscal"`
		FiscalType   string `json:"tipoDocumentoFiscal"`
		FiscalXMLURL string `json:"urlArquivoXml"`
	}
	failBody struct {
		Note string `json:"observacao"`
	}
	accountBody struct {
		Seed string `json:"seed"`
	}
	upsertAnswer struct {
		Upserted int `json:"upserted"`
		errorAnswer
	}
)

// maxControlBody bounds control bodies; a benchmark catalog of 100,000
// products is about 70 MB.
const maxControlBody = 512 << 20

func (s *Sim) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /_sim/accounts/{key}", s.controlCreateAccount)
	mux.HandleFunc("GET /_sim/accounts/{key}/products", s.controlProducts)
	mux.HandleFunc("PUT /_sim/accounts/{key}/products", s.controlUpsert)
	mux.HandleFunc("POST /_sim/accounts/{key}/stock", s.controlStock)
	mux.HandleFunc("DELETE /_sim/accounts/{key}/products/{id}", s.controlUnlist)
	mux.HandleFunc("GET /_sim/accounts/{key}/orders", s.controlOrders)
	mux.HandleFunc("POST /_sim/accounts/{key}/orders/{id}/events", s.controlEvent)
	mux.HandleFunc("POST /_sim/accounts/{key}/orders/{id}/fail", s.controlFail)
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("PUT /_sim/faults", s.controlFaults)
	mux.HandleFunc("/_sim/", func(w http.ResponseWriter, _ *http.Request) {
		writeErrors(w, http.StatusNotFound, "no such control endpoint")
	})
}

func (s *Sim) controlCreateAccount(w http.ResponseWriter, r *http.Request) {
	var body accountBody
	if !decodeControl(w, r, &body, true) {
		return
	}
	if err := s.AddAccount(r.PathValue("key"), body.Seed); err != nil {
		writeControlError(w, fmt.Errorf("create account: %w", err))
		return
	}
	writeJSON(w, http.StatusCreated, errorAnswer{Errors: []string{}})
}

func (s *Sim) controlProducts(w http.ResponseWriter, r *http.Request) {
	a, err := s.account(r.PathValue("key"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.catalog())
}

func (s *Sim) controlUpsert(w http.ResponseWriter, r *http.Request) {
	if _, err := s.account(r.PathValue("key")); err != nil {
		writeControlError(w, err)
		return
	}
	// Products come in Hiper's shape, which may carry fields hiper-sim does
	// not model: unknown fields are allowed here, unlike in other bodies.
	var products []hiper.Product
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err == nil {
		err = json.Unmarshal(b, &products)
	}
	if err != nil {
		writeErrors(w, http.StatusBadRequest, "decode products: "+err.Error())
		return
	}
	if err := s.UpsertProducts(r.PathValue("key"), products); err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, upsertAnswer{Upserted: len(products), errorAnswer: errorAnswer{Errors: []string{}}})
}

func (s *Sim) controlUnlist(w http.ResponseWriter, r *http.Request) {
	if err := s.UnlistProduct(r.PathValue("key"), r.PathValue("id")); err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, errorAnswer{Errors: []string{}})
}

func (s *Sim) controlStock(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	a, err := s.account(key)
	if err != nil {
		writeControlError(w, err)
		return
	}
	var body stockBody
	if !decodeControl(w, r, &body, false) {
		return
	}
	if body.ProductID == "" || body.Quantity == nil {
		writeErrors(w, http.StatusBadRequest, "produtoId and quantidade are required")
		return
	}
	if body.Reserved != nil {
		if err := s.SetReserved(key, body.ProductID, *body.Reserved); err != nil {
			writeControlError(w, err)
			return
		}
	}
	if err := s.SetStock(key, body.ProductID, *body.Quantity); err != nil {
		writeControlError(w, err)
		return
	}
	level, _ := a.stockLevel(body.ProductID)
	writeJSON(w, http.StatusOK, level)
}

func (s *Sim) controlOrders(w http.ResponseWriter, r *http.Request) {
	a, err := s.account(r.PathValue("key"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.list(s.now()))
}

func (s *Sim) controlEvent(w http.ResponseWriter, r *http.Request) {
	if _, err := s.account(r.PathValue("key")); err != nil {
		writeControlError(w, err)
		return
	}
	var body eventBody
	if !decodeControl(w, r, &body, false) {
		return
	}
	ev := hiper.OrderEvent{Type: body.Type, Note: body.Note, FiscalKey: body.FiscalKey,
		FiscalType: body.FiscalType, FiscalXMLURL: body.FiscalXMLURL}
	if err := s.AddOrderEvent(r.PathValue("key"), r.PathValue("id"), ev); err != nil {
		writeControlError(w, err)
		return
	}
	s.writeOrderStatus(w, r)
}

func (s *Sim) controlFail(w http.ResponseWriter, r *http.Request) {
	if _, err := s.account(r.PathValue("key")); err != nil {
		writeControlError(w, err)
		return
	}
	var body failBody
	if !decodeControl(w, r, &body, true) {
		return
	}
	if err := s.FailOrder(r.PathValue("key"), r.PathValue("id"), body.Note); err != nil {
		writeControlError(w, err)
		return
	}
	s.writeOrderStatus(w, r)
}

// writeOrderStatus answers a control change to an order with its new state.
func (s *Sim) writeOrderStatus(w http.ResponseWriter, r *http.Request) {
	a, err := s.account(r.PathValue("key"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	st, _ := s.orderStatus(a, r.PathValue("id"))
	writeJSON(w, http.StatusOK, st)
}

func (s *Sim) controlFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decodeControl(w, r, &f, false) {
		return
	}
	if err := f.Validate(); err != nil {
		writeControlError(w, fmt.Errorf("set faults: %w", err))
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, s.Faults())
}

// decodeControl decodes a control body strictly — unknown fields and
// trailing data are errors, so a typo in a test fails loudly — or answers
// 400 and returns false. An empty body is allowed when optional.
func decodeControl(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeErrors(w, http.StatusBadRequest, "read body: "+err.Error())
		return false
	}
	if optional && len(bytes.TrimSpace(b)) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err = dec.Decode(v); err == nil && dec.More() {
		err = errors.New("data after the JSON value")
	}
	if err == nil {
		if _, tail := dec.Token(); tail != io.EOF {
			err = errors.New("data after the JSON value")
		}
	}
	if err != nil {
		writeErrors(w, http.StatusBadRequest, "decode body: "+err.Error())
		return false
	}
	return true
}

// writeControlError answers err with the status its kind calls for.
func writeControlError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnknownAccount), errors.Is(err, ErrUnknownProduct), errors.Is(err, ErrUnknownOrder):
		status = http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, ErrAccountExists):
		status = http.StatusConflict
	}
	writeErrors(w, status, err.Error())
}

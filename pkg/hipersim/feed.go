package hipersim

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// nothingNew is Hiper's answer when no product changed after the cursor —
// an HTTP 400, byte for byte as Hiper sends it.
const nothingNew = `{"pontoDeSincronizacao":0,"produtos":null,"errors":["Nenhum produto encontrado"],"message":null}`

// handleProducts serves GET /produtos/pontoDeSincronizacao: the products
// changed after the cursor, at most Batch, in sync-point order.
func (s *Sim) handleProducts(w http.ResponseWriter, r *http.Request, a *account) {
	raw := r.URL.Query().Get("pontoDeSincronizacao")
	if raw == "" {
		writeFeedError(w, "O parâmetro pontoDeSincronizacao é obrigatório.")
		return
	}
	cursor, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || cursor < 0 {
		writeFeedError(w, "O parâmetro pontoDeSincronizacao deve ser um número inteiro não negativo.")
		return
	}

	buf := s.buffers.Get().(*bytes.Buffer)
	defer s.buffers.Put(buf)
	buf.Reset()

	// The answer is built under the read lock from each product's cached
	// JSON: a warm feed costs a copy per product, not an encoding.
	a.mu.RLock()
	entries := a.since(cursor, s.cfg.Batch)
	if len(entries) == 0 {
		a.mu.RUnlock()
		writeBody(w, http.StatusBadRequest, []byte(nothingNew))
		return
	}
	buf.WriteString(`{"pontoDeSincronizacao":`)
	buf.WriteString(strconv.FormatInt(entries[len(entries)-1].sync, 10))
	buf.WriteString(`,"produtos":[`)
	for i, e := range entries {
		b, err := a.encoded(e)
		if err != nil {
			a.mu.RUnlock()
			writeErrors(w, http.StatusInternalServerError, "Erro interno do simulador: "+err.Error())
			return
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	a.mu.RUnlock()
	buf.WriteString(`],"errors":[],"message":null}`)
	writeBody(w, http.StatusOK, buf.Bytes())
}

// writeFeedError answers a malformed feed request in the feed's shape.
func writeFeedError(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, hiper.ProductPage{
		Answer: hiper.Answer{Errors: []string{msg}},
	})
}

// handleStock serves GET /estoques/pontoDeSincronizacao: one product's
// current stock and sync point. The cursor is checked but, as far as Hiper
// documents, does not filter: the current stock is always answered.
func (s *Sim) handleStock(w http.ResponseWriter, r *http.Request, a *account) {
	q := r.URL.Query()
	if raw := q.Get("pontoDeSincronizacao"); raw != "" {
		if n, err := strconv.ParseInt(raw, 10, 64); err != nil || n < 0 {
			writeErrors(w, http.StatusBadRequest, "O parâmetro pontoDeSincronizacao deve ser um número inteiro não negativo.")
			return
		}
	}
	id := q.Get("ProdutoId") // capital P, as Hiper documents it
	switch {
	case id == "":
		writeErrors(w, http.StatusBadRequest, "O parâmetro ProdutoId é obrigatório.")
		return
	case !hiper.ValidID(id):
		writeErrors(w, http.StatusBadRequest, "O parâmetro ProdutoId deve ser um identificador (uuid) válido.")
		return
	}
	level, ok := a.stockLevel(id)
	if !ok {
		writeErrors(w, http.StatusNotFound, "Produto não encontrado.")
		return
	}
	writeJSON(w, http.StatusOK, level)
}

// stockLevel is a product's stock as the stock endpoint answers it.
func (a *account) stockLevel(productID string) (hiper.StockLevel, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	e := a.products[normalizeID(productID)]
	if e == nil {
		return hiper.StockLevel{}, false
	}
	quantity := e.p.Stock
	if kids := a.children[e.p.ID]; len(kids) > 0 {
		quantity = hiper.Decimal{}
		for _, k := range kids {
			quantity = hiper.Decimal{Decimal: quantity.Add(k.p.Stock.Decimal)}
		}
	}
	return hiper.StockLevel{
		SyncPoint:    e.sync,
		ProductID:    e.p.ID,
		Quantity:     quantity,
		MinimumStock: e.p.MinimumStock,
		Answer:       hiper.Answer{Errors: []string{}},
	}, true
}

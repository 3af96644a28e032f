package hipersim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
)

// fuzzSim is a Sim served in-process (no sockets: fuzzing runs it millions
// of times) with one sellable product and a token.
func fuzzSim(f *testing.F) (http.Handler, string) {
	sim, err := hipersim.New(hipersim.Config{Seed: hipersim.SeedEmpty, ProcessingDelay: -1})
	if err != nil {
		f.Fatal(err)
	}
	if err := sim.UpsertProducts(hipersim.DemoKey, []hiper.Product{simpleProduct(1, "1000000")}); err != nil {
		f.Fatal(err)
	}
	h := sim.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/auth/gerar-token/"+hipersim.DemoKey, nil))
	var ans hiper.TokenAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || ans.Token == "" {
		f.Fatalf("get token: %s, %v", rec.Body, err)
	}
	return h, ans.Token
}

// checkAnswer fails unless the answer is JSON with an errors list, and a
// body that is not JSON was answered 400.
func checkAnswer(t *testing.T, body []byte, rec *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	var ans struct {
		Errors []string `json:"errors"`
	}
	if rec.Code != http.StatusOK || rec.Body.Len() > 0 && rec.Body.Bytes()[0] == '{' {
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
			t.Fatalf("answer %d is not JSON: %s", rec.Code, rec.Body)
		}
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && !json.Valid(trimmed) && rec.Code != http.StatusBadRequest {
		t.Fatalf("garbage %q answered %d, want 400", body, rec.Code)
	}
	for _, code := range allowed {
		if rec.Code == code {
			return
		}
	}
	t.Fatalf("status %d for %q (errors %v), want one of %v", rec.Code, body, ans.Errors, allowed)
}

func FuzzOrderBody(f *testing.F) {
	h, token := fuzzSim(f)
	valid, _ := json.Marshal(validOrder(testID(1)))
	for _, seed := range [][]byte{valid, nil, []byte("null"), []byte("[]"), []byte(`{"itens":[{}]}`),
		[]byte(`{"cliente":{"documento":1e3}}`), []byte(`{"itens":[{"quantidade":"1e400"}]}`), []byte("\xff{")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/api/v1/pedido-de-venda/", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, body, rec, http.StatusOK, http.StatusBadRequest)
		if rec.Code == http.StatusOK {
			var ans hiper.CreateOrderAnswer
			_ = json.Unmarshal(rec.Body.Bytes(), &ans)
			if (ans.ID == "") == (len(ans.Errors) == 0) {
				t.Fatalf("200 answer %s: want either an id or errors", rec.Body)
			}
		}
	})
}

func FuzzControlBodies(f *testing.F) {
	h, token := fuzzSim(f)
	// A real order, so the events and fail paths get past the lookup.
	valid, _ := json.Marshal(validOrder(testID(1)))
	req := httptest.NewRequest("POST", "/api/v1/pedido-de-venda/", bytes.NewReader(valid))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var created hiper.CreateOrderAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created.ID == "" {
		f.Fatalf("create order: %s, %v", rec.Body, err)
	}
	account := "/_sim/accounts/" + hipersim.DemoKey
	paths := []struct{ method, path string }{
		{"PUT", account + "/products"},
		{"POST", account + "/stock"},
		{"POST", account + "/orders/" + created.ID + "/events"},
		{"POST", account + "/orders/" + created.ID + "/fail"},
		{"PUT", "/_sim/faults"},
		{"POST", "/_sim/accounts/" + otherKey},
	}
	for i, seed := range []string{`[{"id":"` + testID(2) + `","nome":"x"}]`, `{"produtoId":"` + testID(1) + `","quantidade":2}`,
		`{"codigoDoTipoDeEvento":3}`, `{"observacao":"x"}`, `{"errorRate":0.5}`, `{"seed":"demo"}`} {
		f.Add(uint8(i), []byte(seed))
		f.Add(uint8(i), []byte("\x00garbage"))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		p := paths[int(which)%len(paths)]
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(p.method, p.path, bytes.NewReader(body)))
		checkAnswer(t, body, rec, http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict)
	})
}

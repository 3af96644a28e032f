package hiper_test

// Tests of answers hiper-sim does not give: the alternatives hiper-api.md
// says the client must survive, and broken servers. Everything the simulator
// can do is in conformance_test.go.

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/testkit"
)

const (
	testKey   = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	testToken = "tok-0123456789"
	orderID   = "6b1f8a52-9d0e-4c1b-8f7a-0e5d2c3b4a19"
)

// testJWT is a token whose payload holds claims.
func testJWT(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(claims)) + ".c2ln"
}

// serve starts h behind the API prefix and returns a client of it.
func serve(t *testing.T, h http.HandlerFunc, opts ...hiper.Option) *hiper.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := hiper.New(srv.URL+"/api/v1", opts...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

// answer returns a handler that answers every request with status and body.
func answer(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// truncated promises a longer body than it sends, then drops the connection.
func truncated(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"pontoDeSincr`)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
		opts []hiper.Option
		ok   bool
	}{
		{name: "plain", url: "https://ms-ecommerce.hiper.com.br/api/v1", ok: true},
		{name: "trailing slash", url: "http://127.0.0.1:8089/api/v1/", ok: true},
		{name: "no timeout", url: "http://h/api/v1", opts: []hiper.Option{hiper.WithTimeout(0)}, ok: true},
		{name: "relative", url: "/api/v1"},
		{name: "other scheme", url: "ftp://h/api/v1"},
		{name: "credentials", url: "https://u:p@h/api/v1"},
		{name: "query", url: "https://h/api/v1?x=1"},
		{name: "negative timeout", url: "http://h", opts: []hiper.Option{hiper.WithTimeout(-time.Second)}},
		{name: "zero body limit", url: "http://h", opts: []hiper.Option{hiper.WithMaxBodyBytes(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := hiper.New(tt.url, tt.opts...)
			if (err == nil) != tt.ok {
				t.Fatalf("New(%q) = %v, want ok %v", tt.url, err, tt.ok)
			}
		})
	}
}

// check is what a test expects of an error.
type check struct {
	is      []error  // each must match errors.Is
	isNot   []error  // none may match
	status  int      // the *hiper.Error's status
	text    []string // each must be in the message
	body    string   // the kept body, when set
	retry   time.Duration
	retryOK bool
}

func (c check) verify(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("got no error")
	}
	for _, target := range c.is {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%q, %v) = false", err, target)
		}
	}
	for _, target := range c.isNot {
		if errors.Is(err, target) {
			t.Errorf("errors.Is(%q, %v) = true", err, target)
		}
	}
	var e *hiper.Error
	if !errors.As(err, &e) {
		t.Fatalf("%q is not a *hiper.Error", err)
	}
	if e.Status != c.status {
		t.Errorf("status = %d, want %d", e.Status, c.status)
	}
	for _, s := range c.text {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if c.body != "" && string(e.Body) != c.body {
		t.Errorf("kept body = %q, want %q", e.Body, c.body)
	}
	if d, ok := hiper.RetryAfter(err); d != c.retry || ok != c.retryOK {
		t.Errorf("RetryAfter = %v, %v; want %v, %v", d, ok, c.retry, c.retryOK)
	}
	for _, secret := range []string{testKey, testToken} {
		if strings.Contains(err.Error(), secret) || bytes.Contains(e.Body, []byte(secret)) {
			t.Errorf("error %q (body %q) holds a secret", err, e.Body)
		}
	}
}

func TestAnswersBeyondTheSimulator(t *testing.T) {
	t.Parallel()
	products := func(c *hiper.Client) error {
		_, err := c.Products(t.Context(), testToken, 10)
		return err
	}
	token := func(c *hiper.Client) error {
		_, err := c.Token(t.Context(), testKey)
		return err
	}
	create := func(c *hiper.Client) error {
		_, err := c.CreateSalesOrder(t.Context(), testToken, hiper.SalesOrder{})
		return err
	}
	status := func(c *hiper.Client) error {
		_, err := c.SalesOrderStatus(t.Context(), testToken, orderID)
		return err
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		opts    []hiper.Option
		call    func(*hiper.Client) error
		want    check
	}{
		{
			name: "success that is not JSON", handler: answer(200, "<html>maintenance</html>"), call: products,
			want: check{is: []error{hiper.ErrBadResponse}, isNot: []error{hiper.ErrTransient}, status: 200,
				body: "<html>maintenance</html>", text: []string{"get products", "GET /produtos/pontoDeSincronizacao", "200"}},
		},
		{
			name: "success of the wrong shape", handler: answer(200, `{"pontoDeSincronizacao":"abc","produtos":[]}`), call: products,
			want: check{is: []error{hiper.ErrBadResponse}, status: 200, body: `{"pontoDeSincronizacao":"abc","produtos":[]}`},
		},
		{
			name: "order status of the wrong shape", handler: answer(200, `{"eventos":{"a":1}}`), call: status,
			want: check{is: []error{hiper.ErrBadResponse}, status: 200, text: []string{"GET /pedido-de-venda/eventos/{id}"}},
		},
		{
			name: "success over the body limit", opts: []hiper.Option{hiper.WithMaxBodyBytes(64)},
			handler: answer(200, `{"pontoDeSincronizacao":5,"produtos":[`+strings.Repeat(`{},`, 40)+`{}]}`), call: products,
			want: check{is: []error{hiper.ErrBadResponse}, status: 200, text: []string{"exceeds 64 bytes"}},
		},
		{
			name: "5xx over the body limit", opts: []hiper.Option{hiper.WithMaxBodyBytes(64)},
			handler: answer(500, strings.Repeat("x", 100)), call: products,
			want: check{is: []error{hiper.ErrTransient}, status: 500},
		},
		{
			name: "truncated success", handler: truncated(200), call: products,
			want: check{is: []error{hiper.ErrTransient, io.ErrUnexpectedEOF}, status: 200},
		},
		{
			name: "truncated 5xx", handler: truncated(503), call: products,
			want: check{is: []error{hiper.ErrTransient}, status: 503},
		},
		{
			name: "proxy page on a 502", handler: answer(502, "<html>Bad Gateway</html>"), call: products,
			want: check{is: []error{hiper.ErrTransient}, status: 502, text: []string{"Bad Gateway"}},
		},
		{
			name: "503 with a Retry-After date",
			handler: answer(503, `{"errors":["Serviço indisponível"],"message":null}`,
				"Date", "Sun, 01 Mar 2026 12:00:00 GMT", "Retry-After", "Sun, 01 Mar 2026 12:00:30 GMT"),
			call: products,
			want: check{is: []error{hiper.ErrTransient}, status: 503, retry: 30 * time.Second, retryOK: true,
				text: []string{"Serviço indisponível"}},
		},
		{
			name:    "429 with a Retry-After date",
			handler: answer(429, `{}`, "Date", "Sun, 01 Mar 2026 12:00:00 GMT", "Retry-After", "Sun, 01 Mar 2026 12:01:00 GMT"),
			call:    products,
			want: check{is: []error{hiper.ErrRateLimited}, isNot: []error{hiper.ErrTransient}, status: 429,
				retry: time.Minute, retryOK: true},
		},
		{
			name: "nothing new as a 200", handler: answer(200, `{"pontoDeSincronizacao":0,"produtos":[],"errors":[],"message":null}`),
			call: products, want: check{is: []error{hiper.ErrNothingNew}, isNot: []error{hiper.ErrRejected}, status: 200},
		},
		{
			name: "nothing new as a 404", handler: answer(404, `{"errors":["Nenhum produto encontrado"],"message":null}`),
			call: products, want: check{is: []error{hiper.ErrNothingNew}, isNot: []error{hiper.ErrNotFound}, status: 404},
		},
		{
			name: "missing parameter is not nothing new", handler: answer(400, `{"errors":["O parâmetro pontoDeSincronizacao é obrigatório"],"message":null}`),
			call: products, want: check{is: []error{hiper.ErrRejected}, isNot: []error{hiper.ErrNothingNew}, status: 400,
				text: []string{"O parâmetro pontoDeSincronizacao é obrigatório"}},
		},
		{
			name: "errors as one string", handler: answer(402, `{"errors":"Falha ao processar","message":{"detalhe":"x"}}`),
			call: create, want: check{is: []error{hiper.ErrRejected}, isNot: []error{hiper.ErrOutcomeUnknown}, status: 402,
				text: []string{"Falha ao processar", `{\"detalhe\":\"x\"}`}},
		},
		{
			name: "409 conflict", handler: answer(409, `{"errors":["Pedido já cancelado"]}`), call: status,
			want: check{is: []error{hiper.ErrRejected}, status: 409, text: []string{"Pedido já cancelado"}},
		},
		{
			name: "Hiper echoing the token", handler: answer(400, `{"errors":["Token `+testToken+` sem permissão"]}`), call: status,
			want: check{is: []error{hiper.ErrRejected}, status: 400, text: []string{"sem permissão"}},
		},
		{
			name: "order created without an id", handler: answer(200, `{"id":null,"errors":[],"message":"ok"}`), call: create,
			want: check{is: []error{hiper.ErrBadResponse, hiper.ErrOutcomeUnknown}, status: 200},
		},
		// The create's decision table (docs/order-forwarder.md): only an
		// answer that proves Hiper did not store the order is free of
		// ErrOutcomeUnknown.
		{
			name: "order post refused by Hiper with a 500", handler: answer(500, `{"errors":["Erro interno"]}`), call: create,
			want: check{is: []error{hiper.ErrTransient}, isNot: []error{hiper.ErrOutcomeUnknown}, status: 500, text: []string{"Erro interno"}},
		},
		{
			name: "order post refused by Hiper with a 503", handler: answer(503, `{"errors":["Serviço indisponível"],"message":null}`), call: create,
			want: check{is: []error{hiper.ErrTransient}, isNot: []error{hiper.ErrOutcomeUnknown}, status: 503},
		},
		{
			name: "order post 500 with Hiper's envelope and an id", handler: answer(500, `{"id":"d23b6f89-fb47-4e90-8f62-3dbe5576f0f8","errors":["Erro interno"]}`), call: create,
			want: check{is: []error{hiper.ErrTransient, hiper.ErrOutcomeUnknown}, status: 500, text: []string{"may have taken effect"}},
		},
		{
			name: "order post 500 with Hiper's envelope but no errors", handler: answer(500, `{"errors":[],"message":"falhou"}`), call: create,
			want: check{is: []error{hiper.ErrTransient, hiper.ErrOutcomeUnknown}, status: 500},
		},
		{
			name: "order post 503 with a proxy page", handler: answer(503, "<html><h1>503 Service Unavailable</h1></html>"), call: create,
			want: check{is: []error{hiper.ErrTransient, hiper.ErrOutcomeUnknown}, status: 503, text: []string{"503 Service Unavailable", "may have taken effect"}},
		},
		{
			name: "order post 502 with a proxy page", handler: answer(502, "<html>Bad Gateway</html>"), call: create,
			want: check{is: []error{hiper.ErrTransient, hiper.ErrOutcomeUnknown}, status: 502},
		},
		{
			name: "order post 504 with an empty body", handler: answer(504, ""), call: create,
			want: check{is: []error{hiper.ErrTransient, hiper.ErrOutcomeUnknown}, status: 504},
		},
		{
			name: "order post 503 with JSON that is not Hiper's", handler: answer(503, `{"error":"upstream timeout"}`), call: create,
			want: check{is: []error{hiper.ErrTransient, hiper.ErrOutcomeUnknown}, status: 503},
		},
		{
			name: "order post 400 with Hiper's envelope", handler: answer(400, `{"errors":["Cliente inválido"]}`), call: create,
			want: check{is: []error{hiper.ErrRejected}, isNot: []error{hiper.ErrOutcomeUnknown}, status: 400},
		},
		{
			name: "order post 413 with a proxy page", handler: answer(413, "<html>413 Request Entity Too Large</html>"), call: create,
			want: check{is: []error{hiper.ErrBadResponse, hiper.ErrOutcomeUnknown}, isNot: []error{hiper.ErrRejected}, status: 413},
		},
		{
			name: "order post 404 with a proxy page", handler: answer(404, "<html>Not Found</html>"), call: create,
			want: check{is: []error{hiper.ErrBadResponse, hiper.ErrOutcomeUnknown}, isNot: []error{hiper.ErrNotFound}, status: 404},
		},
		{
			name: "order post 200 unreadable", handler: answer(200, `{"id":"x",`), call: create,
			want: check{is: []error{hiper.ErrBadResponse, hiper.ErrOutcomeUnknown}, status: 200},
		},
		{
			name: "order post rate limited", handler: answer(429, `{}`, "Retry-After", "3"), call: create,
			want: check{is: []error{hiper.ErrRateLimited}, isNot: []error{hiper.ErrOutcomeUnknown}, status: 429,
				retry: 3 * time.Second, retryOK: true},
		},
		{
			name: "token call without a token", handler: answer(200, `{"chaveDeSeguranca":"`+testKey+`","token":null,"errors":[],"message":null}`),
			call: token, want: check{is: []error{hiper.ErrInvalidKey}, status: 200},
		},
		{
			name: "token call with errors", handler: answer(200, `{"token":"`+testJWT(`{"exp":1900000000}`)+`","errors":["Chave inativa"]}`),
			call: token, want: check{is: []error{hiper.ErrInvalidKey}, status: 200, text: []string{"Chave inativa"}},
		},
		{
			name: "token call answering 401", handler: answer(401, ``), call: token,
			want: check{is: []error{hiper.ErrInvalidKey}, isNot: []error{hiper.ErrUnauthorized}, status: 401},
		},
		{
			name: "token call answering 403", handler: answer(403, `<html>Forbidden</html>`), call: token,
			want: check{is: []error{hiper.ErrInvalidKey}, status: 403},
		},
		{
			name: "token call answering 404", handler: answer(404, `{"errors":["Chave `+testKey+` não encontrada"]}`), call: token,
			want: check{is: []error{hiper.ErrInvalidKey}, isNot: []error{hiper.ErrNotFound}, status: 404, text: []string{"não encontrada"}},
		},
		{
			name: "token without exp", handler: answer(200, `{"token":"`+testJWT(`{"sid":"x"}`)+`","errors":[]}`), call: token,
			want: check{is: []error{hiper.ErrBadResponse}, status: 200, text: []string{"no exp claim"}},
		},
		{
			name: "token call answering garbage", handler: answer(200, `{"chaveDeSeguranca":"`+testKey+`","token":`), call: token,
			want: check{is: []error{hiper.ErrBadResponse}, status: 200},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.want.verify(t, tt.call(serve(t, tt.handler, tt.opts...)))
		})
	}
}

func TestOrderIDsAreEscaped(t *testing.T) {
	t.Parallel()
	var got atomic.Value
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.EscapedPath())
		answer(200, `{"errors":[],"message":null}`)(w, r)
	})
	if err := c.CancelSalesOrder(t.Context(), testToken, "a/b?c"); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if want := "/api/v1/pedido-de-venda/cancelar/a%2Fb%3Fc"; got.Load() != want {
		t.Fatalf("path %q, want %q", got.Load(), want)
	}
}

func TestControlCharactersInAToken(t *testing.T) {
	t.Parallel()
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { t.Error("a call was made") })
	_, err := c.Products(t.Context(), "tok\r\nX-Injected: 1", 0)
	check{is: []error{hiper.ErrUnauthorized}, isNot: []error{hiper.ErrTransient}}.verify(t, err)
}

func TestCancelAcceptsAnEmptyAnswer(t *testing.T) {
	t.Parallel()
	c := serve(t, answer(http.StatusNoContent, ""))
	if err := c.CancelSalesOrder(t.Context(), testToken, orderID); err != nil {
		t.Fatalf("cancel: %v", err)
	}
}

func TestProductFeedStopsOnACursorThatDoesNotAdvance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cursors []int64 // answered in turn
		want    []int64 // batches yielded before the error
	}{
		{name: "repeated", cursors: []int64{5, 9, 9}, want: []int64{5, 9}},
		{name: "going back", cursors: []int64{5, 3}, want: []int64{5}},
		{name: "zero with products", cursors: []int64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int64
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				n := calls.Add(1)
				if int(n) > len(tt.cursors) {
					t.Errorf("call %d after the feed should have stopped", n)
					answer(400, `{"pontoDeSincronizacao":0,"produtos":null,"errors":["Nenhum produto encontrado"]}`)(w, r)
					return
				}
				answer(200, fmt.Sprintf(`{"pontoDeSincronizacao":%d,"produtos":[{"id":"p"}],"errors":[]}`, tt.cursors[n-1]))(w, r)
			})
			var got []int64
			var feedErr error
			for batch, err := range c.ProductFeed(t.Context(), testToken, 0) {
				if err != nil {
					feedErr = err
					continue
				}
				got = append(got, batch.SyncPoint)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("batches at %v, want %v", got, tt.want)
			}
			check{is: []error{hiper.ErrBadResponse}, status: 200, text: []string{"cursor did not advance"}}.verify(t, feedErr)
		})
	}
}

func TestUnreachableHiper(t *testing.T) {
	t.Parallel()
	// A port nothing listens on and no other test is given: a server
	// closed here would free an ephemeral port another test's server may
	// take at once.
	c, err := hiper.New("http://" + testkit.FreeAddr(t) + "/api/v1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateSalesOrder(t.Context(), testToken, hiper.SalesOrder{})
	// Nothing was sent, so posting again cannot duplicate the order.
	check{is: []error{hiper.ErrTransient}, isNot: []error{hiper.ErrOutcomeUnknown}}.verify(t, err)
	_, err = c.Token(t.Context(), testKey)
	check{is: []error{hiper.ErrTransient}, text: []string{"REDACTED"}}.verify(t, err)
}

// The token call never follows a redirect (it would carry the key in its
// path elsewhere), and the key is redacted from what comes back whatever
// its case.
func TestTokenCallRefusesRedirectsAndRedactsTheKeyInAnyCase(t *testing.T) {
	t.Parallel()
	var followed atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
		_, _ = io.WriteString(w, `{"token":"stolen"}`)
	}))
	t.Cleanup(elsewhere.Close)
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusFound)
	})
	_, err := c.Token(t.Context(), testKey)
	if err == nil || !errors.Is(err, hiper.ErrBadResponse) || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("want a refused redirect, got %v", err)
	}
	if followed.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
	if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(testKey)) {
		t.Fatalf("the error holds the key: %v", err)
	}

	upper := strings.ToUpper(testKey)
	c = serve(t, answer(400, `{"message":"chave `+upper+` invalida","errors":["chave `+upper+`"]}`))
	_, err = c.Token(t.Context(), testKey)
	var he *hiper.Error
	if err == nil || strings.Contains(strings.ToLower(err.Error()), strings.ToLower(testKey)) ||
		(errors.As(err, &he) && strings.Contains(strings.ToLower(string(he.Body)), strings.ToLower(testKey))) {
		t.Fatalf("the key leaked in upper case: %v", err)
	}
}

package hipersim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint keys: "METHOD /pattern" of each API endpoint, as Stats counts them
// and Faults.Endpoints selects them. Paths are relative to /api/v1.
const (
	EndpointToken       = "GET /auth/gerar-token/{chaveDeSeguranca}"
	EndpointProducts    = "GET /produtos/pontoDeSincronizacao"
	EndpointStock       = "GET /estoques/pontoDeSincronizacao"
	EndpointCreateOrder = "POST /pedido-de-venda/"
	EndpointOrderEvents = "GET /pedido-de-venda/eventos/{id}"
	EndpointCancelOrder = "PUT /pedido-de-venda/cancelar/{id}"
)

// APIEndpoints returns the key of every API endpoint.
func APIEndpoints() []string {
	return []string{EndpointToken, EndpointProducts, EndpointStock,
		EndpointCreateOrder, EndpointOrderEvents, EndpointCancelOrder}
}

// APIPrefix is where the API is served; the control API is under /_sim.
const APIPrefix = "/api/v1"

// Sim is a running simulator: accounts, tokens, faults and counters. It is
// safe for concurrent use.
type Sim struct {
	cfg Config
	now func() time.Time

	accountsMu sync.Mutex // serialises account creation
	// accounts is copied on write: creation is rare, lookups are on every
	// request.
	accounts atomic.Pointer[map[string]*account]

	tokens atomic.Pointer[tokenTable]
	faults atomic.Pointer[faultState]

	endpoints map[string]*endpoint
	handler   http.Handler
	buffers   sync.Pool // *bytes.Buffer for feed answers
}

// endpoint counts the requests of one API endpoint.
type endpoint struct {
	key      string
	requests atomic.Int64
}

// New starts a Sim with one account per configured key, seeded as
// configured.
func New(cfg Config) (*Sim, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("configure hiper-sim: %w", err)
	}
	s := &Sim{
		cfg:       cfg,
		now:       cfg.Now,
		endpoints: make(map[string]*endpoint),
		buffers:   sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
	s.accounts.Store(&map[string]*account{})
	s.tokens.Store(newTokenTable())
	s.faults.Store(newFaultState(Faults{}))
	for _, key := range cfg.Keys {
		if err := s.AddAccount(key, cfg.Seed); err != nil {
			return nil, fmt.Errorf("create account: %w", err)
		}
	}
	s.handler = s.routes()
	return s, nil
}

// Handler serves the API under /api/v1 and the control API under /_sim.
func (s *Sim) Handler() http.Handler { return s.handler }

// AddAccount creates an account for key with a SeedDemo or SeedEmpty
// catalog ("" is SeedEmpty: a fresh account is usually wanted empty).
func (s *Sim) AddAccount(key, seed string) error {
	if !validKey(key) {
		return fmt.Errorf("%w: key is not 64 hexadecimal characters", ErrInvalid)
	}
	if seed != "" && seed != SeedDemo && seed != SeedEmpty {
		return fmt.Errorf("%w: seed %q is neither %q nor %q", ErrInvalid, seed, SeedDemo, SeedEmpty)
	}
	s.accountsMu.Lock()
	defer s.accountsMu.Unlock()
	current := *s.accounts.Load()
	if _, ok := current[key]; ok {
		return ErrAccountExists
	}
	a := newAccount(key)
	if seed == SeedDemo {
		if err := a.upsert(demoCatalog(key)); err != nil {
			return fmt.Errorf("seed demo catalog: %w", err)
		}
	}
	next := maps.Clone(current)
	next[key] = a
	s.accounts.Store(&next)
	return nil
}

// account returns the account of key.
func (s *Sim) account(key string) (*account, error) {
	if a := (*s.accounts.Load())[key]; a != nil {
		return a, nil
	}
	return nil, ErrUnknownAccount
}

// Stats counts tokens issued per security key and requests per API endpoint
// ("METHOD /pattern", see the Endpoint constants). Every request that
// reached an endpoint counts, faulted or refused ones too.
type Stats struct {
	TokensIssued map[string]int `json:"tokensIssued"`
	Requests     map[string]int `json:"requests"`
}

// Stats returns the counters; entries that are zero are left out.
func (s *Sim) Stats() Stats {
	st := Stats{TokensIssued: map[string]int{}, Requests: map[string]int{}}
	for key, a := range *s.accounts.Load() {
		if n := a.tokensIssued.Load(); n > 0 {
			st.TokensIssued[key] = int(n)
		}
	}
	for key, ep := range s.endpoints {
		if n := ep.requests.Load(); n > 0 {
			st.Requests[key] = int(n)
		}
	}
	return st
}

// apiHandler serves one API endpoint; a is the caller's account, nil on the
// token endpoint.
type apiHandler func(w http.ResponseWriter, r *http.Request, a *account)

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	s.api(mux, EndpointToken, false, s.handleToken)
	s.api(mux, EndpointProducts, true, s.handleProducts)
	s.api(mux, EndpointStock, true, s.handleStock)
	// Hiper is an ASP.NET service: the order path answers with or without
	// its trailing slash.
	s.api(mux, EndpointCreateOrder, true, s.handleCreateOrder, "POST "+APIPrefix+"/pedido-de-venda")
	s.api(mux, EndpointOrderEvents, true, s.handleOrderEvents)
	s.api(mux, EndpointCancelOrder, true, s.handleCancelOrder)
	mux.HandleFunc(APIPrefix+"/", func(w http.ResponseWriter, _ *http.Request) {
		writeErrors(w, http.StatusNotFound, "Recurso não encontrado.")
	})
	s.controlRoutes(mux)
	return mux
}

// api registers h for the endpoint key, behind the request counter, the
// faults and, when auth is set, the bearer token check.
func (s *Sim) api(mux *http.ServeMux, key string, auth bool, h apiHandler, extraPatterns ...string) {
	ep := &endpoint{key: key}
	s.endpoints[key] = ep
	method, path, _ := strings.Cut(key, " ")
	if strings.HasSuffix(path, "/") {
		path += "{$}"
	}
	serve := func(w http.ResponseWriter, r *http.Request) {
		ep.requests.Add(1)
		if fs := s.faults.Load(); fs.affects(key) {
			if !fs.delay(r.Context()) {
				return // the client went away
			}
			if fs.rateLimited(s.rateKey(r, auth), s.now()) {
				w.Header().Set("Retry-After", "1")
				writeErrors(w, http.StatusTooManyRequests, "Muitas requisições (simulado). Tente novamente em instantes.")
				return
			}
			if fs.failNow() {
				writeFault(w, r, fs, false)
				return
			}
		}
		var a *account
		if auth {
			if a = s.authenticate(w, r); a == nil {
				return
			}
		}
		h(w, r, a)
	}
	mux.HandleFunc(method+" "+APIPrefix+path, serve)
	for _, p := range extraPatterns {
		mux.HandleFunc(p, serve)
	}
}

// rateKey names the bucket a request draws from: its account when known.
func (s *Sim) rateKey(r *http.Request, auth bool) string {
	if !auth {
		return r.PathValue("chaveDeSeguranca")
	}
	if tok, ok := bearer(r); ok {
		if g, ok := s.tokens.Load().lookup(tok); ok {
			return g.account.key
		}
	}
	return ""
}

// writeJSON writes v as the JSON body of an answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeErrors(w, http.StatusInternalServerError, "Erro interno do simulador: "+err.Error())
		return
	}
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b) // the client may have gone; nothing to do about it
}

// errorAnswer is the body of a failure: Hiper's errors and message.
type errorAnswer struct {
	Errors  []string `json:"errors"`
	Message *string  `json:"message"`
}

// writeErrors answers status with msgs as the errors list.
func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	writeJSON(w, status, errorAnswer{Errors: msgs})
}

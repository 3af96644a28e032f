package hipersim

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults are the failures hiper-sim injects into API answers; the control
// API never sees them. The zero Faults is a healthy Hiper.
type Faults struct {
	// ErrorRate is the fraction of requests answered ErrorStatus before
	// anything is done.
	ErrorRate float64 `json:"errorRate"`
	// ErrorStatus is the status of an injected failure; 0 means 503.
	ErrorStatus int `json:"errorStatus"`
	// LatencyMs delays every answer.
	LatencyMs int `json:"latencyMs"`
	// RateLimitPerSecond > 0 gives each account a token bucket of that rate
	// (and burst); requests beyond it are answered 429 with Retry-After: 1.
	RateLimitPerSecond int `json:"rateLimitPerSecond"`
	// ExpireTokensNow invalidates every token issued so far. It is an
	// action, not a state: the stored faults have it false.
	ExpireTokensNow bool `json:"expireTokensNow"`
	// Endpoints limits the faults to these endpoints (the Endpoint
	// constants, "METHOD /pattern"); empty means every API endpoint.
	Endpoints []string `json:"endpoints,omitempty"`
	// FailAfterCommitRate is the fraction of order creations that succeed
	// but are answered ErrorStatus, as when Hiper's answer is lost.
	FailAfterCommitRate float64 `json:"failAfterCommitRate"`
	// Answer is how an injected failure is answered: AnswerHiper, Hiper's
	// own JSON error envelope; AnswerProxy, a reverse proxy's HTML error
	// page (as nginx or a load balancer sends on 502, 503 or 504);
	// AnswerEmpty, no body at all; AnswerReset, no answer: the connection
	// is reset once the request's body was read. "" answers an ErrorRate
	// failure as Hiper and a FailAfterCommitRate one as a proxy: Hiper's own
	// envelope after it stored the order is a lie no client can see
	// through (ask for it with AnswerHiper).
	Answer string `json:"answer,omitempty"`
}

// How an injected failure is answered (Faults.Answer).
const (
	AnswerHiper = "hiper"
	AnswerProxy = "proxy"
	AnswerEmpty = "empty"
	AnswerReset = "reset"
)

// DefaultErrorStatus is the status of an injected failure when
// Faults.ErrorStatus is 0.
const DefaultErrorStatus = http.StatusServiceUnavailable

// Validate reports what is wrong with f, naming the JSON fields.
func (f Faults) Validate() error {
	var problems []string
	if f.ErrorRate < 0 || f.ErrorRate > 1 {
		problems = append(problems, "errorRate must be between 0 and 1")
	}
	if f.FailAfterCommitRate < 0 || f.FailAfterCommitRate > 1 {
		problems = append(problems, "failAfterCommitRate must be between 0 and 1")
	}
	if f.ErrorStatus != 0 && (f.ErrorStatus < 400 || f.ErrorStatus > 599) {
		problems = append(problems, "errorStatus must be 0 or an HTTP status from 400 to 599")
	}
	if f.LatencyMs < 0 {
		problems = append(problems, "latencyMs must not be negative")
	}
	if f.RateLimitPerSecond < 0 {
		problems = append(problems, "rateLimitPerSecond must not be negative")
	}
	switch f.Answer {
	case "", AnswerHiper, AnswerProxy, AnswerEmpty, AnswerReset:
	default:
		problems = append(problems, fmt.Sprintf("answer must be one of %s, %s, %s, %s (or empty: %s)",
			AnswerHiper, AnswerProxy, AnswerEmpty, AnswerReset, AnswerHiper))
	}
	known := APIEndpoints()
	for _, e := range f.Endpoints {
		if !slices.Contains(known, normalizeEndpoint(e)) {
			problems = append(problems, fmt.Sprintf("endpoints: %q is not one of %s", e, strings.Join(known, ", ")))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// normalizeEndpoint accepts an endpoint key with the /api/v1 prefix too.
func normalizeEndpoint(e string) string {
	method, path, ok := strings.Cut(strings.TrimSpace(e), " ")
	if !ok {
		return e
	}
	return strings.ToUpper(method) + " " + strings.TrimPrefix(strings.TrimSpace(path), APIPrefix)
}

// SetFaults replaces the whole fault set. Out-of-range values are clamped
// (the HTTP control API rejects them instead, see Faults.Validate).
func (s *Sim) SetFaults(f Faults) {
	if f.ExpireTokensNow {
		s.expireTokens()
		f.ExpireTokensNow = false
	}
	f.ErrorRate = min(max(f.ErrorRate, 0), 1)
	f.FailAfterCommitRate = min(max(f.FailAfterCommitRate, 0), 1)
	f.LatencyMs = max(f.LatencyMs, 0)
	f.RateLimitPerSecond = max(f.RateLimitPerSecond, 0)
	if f.ErrorStatus != 0 && (f.ErrorStatus < 400 || f.ErrorStatus > 599) {
		f.ErrorStatus = 0
	}
	endpoints := make([]string, 0, len(f.Endpoints))
	for _, e := range f.Endpoints {
		endpoints = append(endpoints, normalizeEndpoint(e))
	}
	f.Endpoints = nil
	if len(endpoints) > 0 {
		f.Endpoints = endpoints
	}
	s.faults.Store(newFaultState(f))
}

// Faults returns the current fault set.
func (s *Sim) Faults() Faults {
	f := s.faults.Load().f
	f.Endpoints = slices.Clone(f.Endpoints)
	return f
}

// faultState is a fault set in force, with its rate-limit buckets; a new
// fault set starts with full buckets.
type faultState struct {
	f    Faults
	only map[string]bool // nil: every endpoint

	mu      sync.Mutex
	buckets map[string]*bucket // by account key
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newFaultState(f Faults) *faultState {
	fs := &faultState{f: f, buckets: make(map[string]*bucket)}
	if len(f.Endpoints) > 0 {
		fs.only = make(map[string]bool, len(f.Endpoints))
		for _, e := range f.Endpoints {
			fs.only[e] = true
		}
	}
	return fs
}

// affects reports whether any fault applies to the endpoint.
func (fs *faultState) affects(endpoint string) bool {
	f := fs.f
	if f.ErrorRate == 0 && f.LatencyMs == 0 && f.RateLimitPerSecond == 0 && f.FailAfterCommitRate == 0 {
		return false
	}
	return fs.only == nil || fs.only[endpoint]
}

// delay waits LatencyMs; false means ctx ended first.
func (fs *faultState) delay(ctx context.Context) bool {
	if fs.f.LatencyMs == 0 {
		return true
	}
	t := time.NewTimer(time.Duration(fs.f.LatencyMs) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// rateLimited takes a token from the account's bucket, reporting true when
// there was none.
func (fs *faultState) rateLimited(accountKey string, now time.Time) bool {
	if fs.f.RateLimitPerSecond == 0 {
		return false
	}
	rate := float64(fs.f.RateLimitPerSecond)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	b := fs.buckets[accountKey]
	if b == nil {
		b = &bucket{tokens: rate, last: now}
		fs.buckets[accountKey] = b
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(rate, b.tokens+elapsed*rate)
		b.last = now
	}
	if b.tokens < 1 {
		return true
	}
	b.tokens--
	return false
}

// failNow draws whether this request fails.
func (fs *faultState) failNow() bool {
	return fs.f.ErrorRate > 0 && rand.Float64() < fs.f.ErrorRate
}

// lostAnswer draws whether a committed order's answer is replaced by a
// failure.
func (fs *faultState) lostAnswer() bool {
	return fs.f.FailAfterCommitRate > 0 && fs.affects(EndpointCreateOrder) && rand.Float64() < fs.f.FailAfterCommitRate
}

// writeFault answers an injected failure. It carries no state change but
// the one FailAfterCommitRate made on purpose.
func writeFault(w http.ResponseWriter, r *http.Request, fs *faultState, committed bool) {
	status := fs.f.ErrorStatus
	if status == 0 {
		status = DefaultErrorStatus
	}
	answer := fs.f.Answer
	if answer == "" && committed {
		answer = AnswerProxy
	}
	switch answer {
	case AnswerProxy:
		page := fmt.Sprintf(proxyPage, status, http.StatusText(status))
		h := w.Header()
		h.Set("Content-Type", "text/html")
		h.Set("Content-Length", strconv.Itoa(len(page)))
		h.Set("Server", "nginx")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, page)
	case AnswerEmpty:
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(status)
	case AnswerReset:
		resetConnection(w, r)
	default:
		writeErrors(w, status, "Serviço indisponível (simulado)")
	}
}

// proxyPage is the error page of a reverse proxy in front of Hiper: what a
// client gets when the proxy gave up on (or lost) Hiper's answer.
const proxyPage = "<html>\r\n<head><title>%[1]d %[2]s</title></head>\r\n<body>\r\n<center><h1>%[1]d %[2]s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

// resetConnection reads what is left of the request's body and resets the
// connection (RST, no answer), as a proxy or network that dies mid-call.
func resetConnection(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // closes the connection without an answer
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST, not FIN
	}
	_ = conn.Close()
}

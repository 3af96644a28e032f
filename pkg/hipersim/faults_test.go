package hipersim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/hipersim/simtest"
)

const feedPath = "/produtos/pontoDeSincronizacao?pontoDeSincronizacao=0"

func TestErrorRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		faults     hipersim.Faults
		wantStatus int
	}{
		{"default status", hipersim.Faults{ErrorRate: 1}, http.StatusServiceUnavailable},
		{"chosen status", hipersim.Faults{ErrorRate: 1, ErrorStatus: http.StatusBadGateway}, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := emptySim(t, nil, simpleProduct(1, "5"))
			a.srv.Sim.SetFaults(tt.faults)
			calls := []struct {
				method, path string
				body         any
			}{
				{"GET", "/auth/gerar-token/" + a.key, nil},
				{"GET", feedPath, nil},
				{"GET", "/estoques/pontoDeSincronizacao?pontoDeSincronizacao=0&ProdutoId=" + testID(1), nil},
				{"POST", "/pedido-de-venda/", validOrder(testID(1))},
			}
			for _, c := range calls {
				var ans hiper.Answer
				if st := a.call(c.method, c.path, c.body, &ans); st != tt.wantStatus || !hasError(ans.Errors, "Serviço indisponível (simulado)") {
					t.Errorf("%s %s: status %d, errors %v; want %d", c.method, c.path, st, ans.Errors, tt.wantStatus)
				}
			}
			// Nothing happened, and the control API is never faulted.
			var orders []hipersim.Order
			if st := a.control("GET", "/_sim/accounts/"+a.key+"/orders", nil, &orders); st != http.StatusOK || len(orders) != 0 {
				t.Errorf("control API: status %d, %d orders; want 200 and none", st, len(orders))
			}
			if n := a.srv.Sim.Stats().TokensIssued[a.key]; n != 1 {
				t.Errorf("%d tokens issued, want only the one before the faults", n)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	clock := simtest.NewClock(epoch) // frozen: buckets refill only when told
	srv := simtest.Start(t, hipersim.Config{Keys: []string{hipersim.DemoKey, otherKey}, Now: clock.Now})
	demo, other := login(t, srv, hipersim.DemoKey), login(t, srv, otherKey)
	srv.Sim.SetFaults(hipersim.Faults{RateLimitPerSecond: 2})

	for i := range 2 {
		if st := demo.call("GET", feedPath, nil, nil); st != http.StatusOK {
			t.Fatalf("request %d within the limit: status %d", i+1, st)
		}
	}
	st, hdr, _ := demo.raw("GET", srv.URL+feedPath, nil)
	if st != http.StatusTooManyRequests || hdr.Get("Retry-After") != "1" {
		t.Fatalf("request over the limit: status %d, Retry-After %q; want 429 and 1", st, hdr.Get("Retry-After"))
	}
	if st := other.call("GET", feedPath, nil, nil); st != http.StatusOK {
		t.Errorf("another account: status %d; the bucket is per account", st)
	}
	if st := demo.control("GET", "/_sim/stats", nil, nil); st != http.StatusOK {
		t.Errorf("control API: status %d, never limited", st)
	}
	clock.Advance(time.Second)
	if st := demo.call("GET", feedPath, nil, nil); st != http.StatusOK {
		t.Errorf("after a second: status %d, want the bucket refilled", st)
	}
}

func TestFaultEndpointsFilter(t *testing.T) {
	t.Parallel()
	a := emptySim(t, nil, simpleProduct(1, "5"))
	// The /api/v1 prefix is accepted too.
	body := `{"errorRate":1,"endpoints":["POST /api/v1/pedido-de-venda/"]}`
	if st := a.control("PUT", "/_sim/faults", body, nil); st != http.StatusOK {
		t.Fatalf("put faults: status %d", st)
	}
	if st := a.call("GET", feedPath, nil, nil); st != http.StatusOK {
		t.Errorf("feed outside the filter: status %d, want 200", st)
	}
	if st := a.call("POST", "/pedido-de-venda/", validOrder(testID(1)), nil); st != http.StatusServiceUnavailable {
		t.Errorf("order inside the filter: status %d, want 503", st)
	}
	var f hipersim.Faults
	a.control("GET", "/_sim/faults", nil, &f)
	if len(f.Endpoints) != 1 || f.Endpoints[0] != hipersim.EndpointCreateOrder || f.ErrorRate != 1 {
		t.Errorf("faults read back %+v", f)
	}
}

func TestFailAfterCommit(t *testing.T) {
	t.Parallel()
	a := emptySim(t, nil, simpleProduct(1, "5"))
	a.srv.Sim.SetFaults(hipersim.Faults{FailAfterCommitRate: 1, ErrorStatus: http.StatusGatewayTimeout})
	// By default the lost answer is a proxy's page: no id, nothing of Hiper's.
	if st, _, raw := a.raw("POST", a.srv.URL+"/pedido-de-venda/", validOrder(testID(1))); st != http.StatusGatewayTimeout || !strings.Contains(string(raw), "504 Gateway Timeout") {
		t.Fatalf("status %d, answer %q; want 504 and a proxy's page", st, raw)
	}
	orders := a.srv.Sim.Orders(a.key)
	if len(orders) != 1 {
		t.Fatalf("%d orders, want the one whose answer was lost", len(orders))
	}
	if q := a.stock(testID(1)).Quantity.String(); q != "4" {
		t.Errorf("stock %s, want 4: the lost order reserved its item", q)
	}
	if st := a.orderStatus(orders[0].ID); st.ID != orders[0].ID {
		t.Errorf("the lost order cannot be read back: %+v", st)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	a := start(t, hipersim.Config{})
	// A latency far above what a local call takes on a loaded machine, so
	// the control API's answer cannot come as late by chance.
	const latency = time.Second
	a.srv.Sim.SetFaults(hipersim.Faults{LatencyMs: int(latency / time.Millisecond)})
	began := time.Now()
	a.call("GET", feedPath, nil, nil)
	if took := time.Since(began); took < latency {
		t.Errorf("answer took %v, want at least %v", took, latency)
	}
	began = time.Now()
	a.control("GET", "/_sim/faults", nil, nil)
	if took := time.Since(began); took >= latency {
		t.Errorf("control answer took %v; the control API has no latency", took)
	}
}

func TestFaultsValidation(t *testing.T) {
	t.Parallel()
	a := start(t, hipersim.Config{})
	for name, body := range map[string]string{
		"rate above 1":      `{"errorRate":1.5}`,
		"negative latency":  `{"latencyMs":-1}`,
		"status not error":  `{"errorStatus":200}`,
		"unknown endpoint":  `{"endpoints":["GET /produtos"]}`,
		"misspelt field":    `{"errorRatio":0.5}`,
		"commit rate below": `{"failAfterCommitRate":-0.1}`,
		"not JSON":          `faults`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var ans hiper.Answer
			if st := a.control("PUT", "/_sim/faults", body, &ans); st != http.StatusBadRequest || len(ans.Errors) == 0 {
				t.Fatalf("status %d, errors %v; want 400", st, ans.Errors)
			}
		})
	}
	t.Cleanup(func() {
		if f := a.srv.Sim.Faults(); f.ErrorRate != 0 || f.LatencyMs != 0 {
			t.Errorf("rejected faults were applied: %+v", f)
		}
	})
}

// TestFaultAnswers: an injected failure answers as Hiper, as a proxy's HTML
// page, with no body, or by resetting the connection; after commit, the
// order is stored whatever the answer.
func TestFaultAnswers(t *testing.T) {
	t.Parallel()
	for _, answer := range []string{"", hipersim.AnswerHiper, hipersim.AnswerProxy, hipersim.AnswerEmpty, hipersim.AnswerReset} {
		for _, afterCommit := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/afterCommit=%v", answer, afterCommit), func(t *testing.T) {
				t.Parallel()
				a := emptySim(t, nil, simpleProduct(1, "5"))
				f := hipersim.Faults{ErrorRate: 1, ErrorStatus: http.StatusBadGateway, Answer: answer,
					Endpoints: []string{hipersim.EndpointCreateOrder}}
				if afterCommit {
					f.ErrorRate, f.FailAfterCommitRate = 0, 1
				}
				if err := f.Validate(); err != nil {
					t.Fatal(err)
				}
				a.srv.Sim.SetFaults(f)
				body, _ := json.Marshal(validOrder(testID(1)))
				req, _ := http.NewRequest("POST", a.srv.URL+"/pedido-de-venda/", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+a.token)
				resp, err := http.DefaultClient.Do(req)
				switch {
				case answer == hipersim.AnswerReset:
					if err == nil {
						resp.Body.Close()
						t.Fatalf("status %d; want the connection reset", resp.StatusCode)
					}
				case err != nil:
					t.Fatal(err)
				default:
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusBadGateway {
						t.Errorf("status %d, want 502", resp.StatusCode)
					}
					shown := answer
					if shown == "" {
						shown = hipersim.AnswerHiper
						if afterCommit {
							shown = hipersim.AnswerProxy
						}
					}
					switch shown {
					case hipersim.AnswerProxy:
						if !strings.Contains(string(raw), "<h1>502 Bad Gateway</h1>") || resp.Header.Get("Content-Type") != "text/html" {
							t.Errorf("proxy page %q (%s)", raw, resp.Header.Get("Content-Type"))
						}
					case hipersim.AnswerEmpty:
						if len(raw) != 0 {
							t.Errorf("body %q, want none", raw)
						}
					default:
						var ans hiper.Answer
						decode(t, raw, &ans)
						if !hasError(ans.Errors, "Serviço indisponível (simulado)") {
							t.Errorf("errors %v", ans.Errors)
						}
					}
				}
				want := 0
				if afterCommit {
					want = 1
				}
				if got := len(a.srv.Sim.Orders(a.key)); got != want {
					t.Errorf("%d orders stored, want %d", got, want)
				}
			})
		}
	}
	if err := (hipersim.Faults{Answer: "teapot"}).Validate(); err == nil {
		t.Error("an unknown answer passed validation")
	}
}

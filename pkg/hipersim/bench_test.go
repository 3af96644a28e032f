package hipersim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/hipersim/simtest"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// benchSim serves a 20,000 × 4 generated catalog (100,000 products) and
// returns a token and a client that keeps enough idle connections for
// parallel callers (the default two per host would make every benchmark a
// connection-setup benchmark).
func benchSim(b *testing.B) (*simtest.Server, []hiper.Product, string, *http.Client) {
	b.Helper()
	catalog := hipersim.GenerateCatalog(20_000, 4, 0, 1)
	srv := simtest.Start(b, hipersim.Config{Seed: hipersim.SeedEmpty})
	if err := srv.Sim.UpsertProducts(hipersim.DemoKey, catalog); err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(hc.CloseIdleConnections)
	resp, err := hc.Get(srv.URL + "/auth/gerar-token/" + hipersim.DemoKey)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var tok hiper.TokenAnswer
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		b.Fatal(err)
	}
	return srv, catalog, tok.Token, hc
}

// feedPage is what a poller needs of a page to go on: the cursor and the
// products, left undecoded so the benchmark measures the simulator.
type feedPage struct {
	SyncPoint int64             `json:"pontoDeSincronizacao"`
	Products  []json.RawMessage `json:"produtos"`
}

func getPage(b *testing.B, hc *http.Client, url, token string, cursor int64) (int, feedPage) {
	req, _ := http.NewRequest("GET", url+"/produtos/pontoDeSincronizacao?pontoDeSincronizacao="+strconv.FormatInt(cursor, 10), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var p feedPage
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		b.Fatal(err)
	}
	return resp.StatusCode, p
}

// BenchmarkFeed reads the product feed in batches of 500 over HTTP, from
// the start again each time it reaches "nothing new". cold-items/s is the
// first full pass, which encodes every product; items/s is the steady state.
func BenchmarkFeed(b *testing.B) {
	srv, catalog, token, hc := benchSim(b)

	began := time.Now()
	cold := 0
	for cursor := int64(0); ; {
		st, p := getPage(b, hc, srv.URL, token, cursor)
		if st != http.StatusOK {
			break
		}
		cold += len(p.Products)
		cursor = p.SyncPoint
	}
	if cold != len(catalog) {
		b.Fatalf("the feed gave %d products, the catalog has %d", cold, len(catalog))
	}
	coldRate := float64(cold) / time.Since(began).Seconds()

	items, cursor := 0, int64(0)
	for b.Loop() {
		st, p := getPage(b, hc, srv.URL, token, cursor)
		if st != http.StatusOK {
			cursor = 0
			continue
		}
		items += len(p.Products)
		cursor = p.SyncPoint
	}
	b.ReportMetric(float64(items)/b.Elapsed().Seconds(), "items/s")
	b.ReportMetric(coldRate, "cold-items/s")
	b.ReportMetric(staticFeedRate(b, hc, srv.URL, token), "baseline-items/s")
}

// staticFeedRate is the same-run baseline of BenchmarkFeed: the same HTTP
// stack and client serving one pre-encoded page of 500 products over and
// over, i.e. the ceiling no simulator logic could beat.
func staticFeedRate(b *testing.B, hc *http.Client, url, token string) float64 {
	req, _ := http.NewRequest("GET", url+"/produtos/pontoDeSincronizacao?pontoDeSincronizacao=0", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(page)
	}))
	defer static.Close()
	items, began := 0, time.Now()
	for time.Since(began) < time.Second {
		_, p := getPage(b, hc, static.URL, token, 0)
		items += len(p.Products)
	}
	return float64(items) / time.Since(began).Seconds()
}

// BenchmarkCreateOrder posts sales orders of two variations each over HTTP
// from 4 × GOMAXPROCS concurrent clients.
func BenchmarkCreateOrder(b *testing.B) {
	srv, catalog, token, hc := benchSim(b)
	var bodies [][]byte
	for i := 0; len(bodies) < 256; i++ {
		first, second := catalog[(i*7)%len(catalog)], catalog[(i*13+1)%len(catalog)]
		if !first.IsVariation() || !second.IsVariation() {
			continue
		}
		o := validOrder(first.ID, second.ID)
		o.StoreOrderID = fmt.Sprint(i)
		body, err := json.Marshal(o)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, body)
	}

	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			req, _ := http.NewRequest("POST", srv.URL+"/pedido-de-venda/", bytes.NewReader(bodies[i%len(bodies)]))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	b.StopTimer()
	b.ReportMetric(staticPostRate(b, hc, bodies), "baseline-orders/s")
}

// staticPostRate is the same-run baseline of BenchmarkCreateOrder: the same
// concurrent POSTs to a handler that reads the body and answers a fixed
// acceptance, for one second.
func staticPostRate(b *testing.B, hc *http.Client, bodies [][]byte) float64 {
	answer := []byte(`{"id":"158b044b-d887-4e47-b08c-e2b353b1c1d5","errors":[],"message":"Pedido recebido e em processamento."}`)
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	defer static.Close()
	var posted atomic.Int64
	deadline := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	for g := range 4 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; time.Now().Before(deadline); i++ {
				resp, err := hc.Post(static.URL, "application/json", bytes.NewReader(bodies[i%len(bodies)]))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				posted.Add(1)
			}
		}(g)
	}
	testkit.Wait(b, &wg, time.Minute, "the posting goroutines")
	return float64(posted.Load()) / time.Second.Seconds()
}

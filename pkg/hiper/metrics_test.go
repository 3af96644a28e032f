package hiper_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// callCounts reads hipersync_hiper_requests_total and the latency
// histogram's sample counts as "endpoint status_class" → count.
func callCounts(t *testing.T, reg *prometheus.Registry) (calls, latencies map[string]uint64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	calls, latencies = map[string]uint64{}, map[string]uint64{}
	for _, f := range families {
		var b strings.Builder
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), testKey) {
			t.Errorf("metrics name the security key:\n%s", b.String())
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			key := l["endpoint"] + " " + l["status_class"]
			switch f.GetName() {
			case "hipersync_hiper_requests_total":
				calls[key] = uint64(m.GetCounter().GetValue())
			case "hipersync_hiper_request_duration_seconds":
				latencies[key] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	return calls, latencies
}

func TestMetricsCountCallsByEndpointAndStatusClass(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	opts := []hiper.Option{hiper.WithMetrics(reg), hiper.WithTimeout(2 * time.Second)}

	ok := serve(t, answer(http.StatusOK, `{"produtoId":"p1","quantidadeEmEstoque":3,"pontoDeSincronizacao":7}`), opts...)
	for range 2 {
		if _, err := ok.Stock(t.Context(), testToken, 0, "p1"); err != nil {
			t.Fatalf("stock: %v", err)
		}
	}
	unavailable := serve(t, answer(http.StatusServiceUnavailable, `{"errors":["fora do ar"]}`), opts...)
	if _, err := unavailable.Stock(t.Context(), testToken, 0, "p1"); err == nil {
		t.Fatal("stock from a 503 succeeded")
	}
	refused := serve(t, answer(http.StatusBadRequest, `{"token":"","errors":["Chave de segurança inválida."]}`), opts...)
	if _, err := refused.Token(t.Context(), testKey); err == nil {
		t.Fatal("token from a 400 succeeded")
	}

	// Nothing listens there, and no other test's server will (testkit.FreeAddr).
	deadClient, err := hiper.New("http://"+testkit.FreeAddr(t)+"/api/v1", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := deadClient.Stock(t.Context(), testToken, 0, "p1"); err == nil {
		t.Fatal("stock from a closed server succeeded")
	}

	hang := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, opts...)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := hang.Stock(ctx, testToken, 0, "p1"); err == nil {
		t.Fatal("stock from a silent server succeeded")
	}

	calls, latencies := callCounts(t, reg)
	want := map[string]uint64{
		"GET /estoques/pontoDeSincronizacao 2xx":       2,
		"GET /estoques/pontoDeSincronizacao 5xx":       1,
		"GET /auth/gerar-token/{chaveDeSeguranca} 4xx": 1,
		"GET /estoques/pontoDeSincronizacao none":      1,
		"GET /estoques/pontoDeSincronizacao cancelled": 1,
	}
	for key, n := range want {
		if calls[key] != n || latencies[key] != n {
			t.Errorf("%s: %d calls, %d latencies; want %d", key, calls[key], latencies[key], n)
		}
	}
	if len(calls) != len(want) {
		t.Errorf("series %v, want exactly %v", calls, want)
	}
}

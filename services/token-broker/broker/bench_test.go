package broker_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// BenchmarkGetToken measures GetToken with 50 concurrent callers and a hot
// cache, as production serves it (mutual TLS, per-method authorization, a
// service's certificate), beside the same-run baseline of the bare gRPC
// health check on the same connection: the broker's whole path against
// what any call to that server costs.
func BenchmarkGetToken(b *testing.B) {
	const callers, perCaller = 50, 800
	st := brokertest.Start(b, brokertest.Options{TLS: true, Tenants: []string{"acme"}})
	cl := dial(b, st.BrokerAddr, st.ClientTLS(b, "order-forwarder"))
	health := healthpb.NewHealthClient(cl.Conn())
	ctx := context.Background()
	if _, err := cl.Token(ctx, "acme"); err != nil {
		b.Fatal(err)
	}

	// rounds alternates the two kinds of call, so that a change in the
	// shared machine's load falls on both alike.
	const rounds = 4
	type tally struct {
		lat     []time.Duration
		elapsed time.Duration
	}
	round := func(t *tally, call func() error) {
		lat := make([][]time.Duration, callers)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range callers {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				lat[i] = make([]time.Duration, 0, perCaller/rounds)
				for range perCaller / rounds {
					t0 := time.Now()
					if err := call(); err != nil {
						b.Error(err)
						return
					}
					lat[i] = append(lat[i], time.Since(t0))
				}
			}(i)
		}
		wg.Wait()
		t.elapsed += time.Since(start)
		for _, l := range lat {
			t.lat = append(t.lat, l...)
		}
	}
	report := func(t *tally, prefix string) {
		slices.Sort(t.lat)
		b.ReportMetric(float64(len(t.lat))/t.elapsed.Seconds(), prefix+"calls/s")
		b.ReportMetric(float64(t.lat[len(t.lat)/2].Microseconds())/1000, prefix+"p50-ms")
		b.ReportMetric(float64(t.lat[len(t.lat)*99/100].Microseconds())/1000, prefix+"p99-ms")
	}
	healthCheck := func() error { _, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); return err }
	getToken := func() error { _, err := cl.Token(ctx, "acme"); return err }

	b.ResetTimer()
	for range b.N {
		var base, tok tally
		for range rounds {
			round(&base, healthCheck)
			round(&tok, getToken)
		}
		report(&tok, "")
		report(&base, "baseline-")
	}
}

package catalogsync

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/poller"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// benchChild makes the test binary run the catalog-poller itself, as its
// own process, so that the benchmark reads the poller's peak memory alone.
const benchChild = "HIPERSYNC_BENCH_CATALOG_POLLER"

func TestMain(m *testing.M) {
	if os.Getenv(benchChild) == "1" {
		os.Exit(runBenchChild())
	}
	os.Exit(m.Run())
}

// runBenchChild runs the catalog-poller until SIGTERM; with
// HIPERSYNC_BENCH_CPUPROFILE it writes its CPU profile there, with
// HIPERSYNC_BENCH_MEMPROFILE its allocations (go tool pprof -sample_index=alloc_space),
// with HIPERSYNC_BENCH_LOG its log to stderr.
func runBenchChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("HIPERSYNC_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if path := os.Getenv("HIPERSYNC_BENCH_MEMPROFILE"); path != "" {
		defer func() {
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				_ = f.Close()
			}
		}()
	}
	var logOut io.Writer = io.Discard
	if os.Getenv("HIPERSYNC_BENCH_LOG") != "" {
		logOut = os.Stderr
	}
	err := poller.Main(ctx, Service, os.Getenv, logOut, func(ctx context.Context, d poller.Deps) (*schedule.Scheduler, error) {
		d.Options.FirstRunSpread = time.Millisecond
		d.Options.Interval = time.Hour // the delta is asked for
		return Start(ctx, d)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "catalog-poller:", err)
		return 1
	}
	return 0
}

// BenchmarkInitialSync measures the catalog-poller, as a process of its
// own, syncing 100,000 products (20,000 parents with 4 variations each) from
// hiper-sim to published events, beside a baseline that only downloads and
// decodes the same feed; then a delta of 100 changed products.
// It reports the poller's CPU seconds for the initial sync beside them.
// HIPERSYNC_BENCH_CPUPROFILE=FILE profiles the poller (go tool pprof FILE).
func BenchmarkInitialSync(b *testing.B) {
	const parents, variations = 20_000, 4
	products := parents * (1 + variations)
	st := brokertest.Start(b, brokertest.Options{Bounds: catalogBenchBounds})
	loadInFamilies(b, st.Sim.Sim, st.Keys["acme"], hipersim.GenerateCatalog(parents, variations, 0, 1))

	// The baseline: the same feed, downloaded and decoded; the best of three
	// passes (the first warms hiper-sim's encoding cache, which the poller
	// then enjoys too).
	client, err := hiper.New(st.Sim.URL)
	if err != nil {
		b.Fatal(err)
	}
	session := client.Session(hiper.NewKeySource(client, st.Keys["acme"]))
	var baseline float64
	for range 3 {
		start, n := time.Now(), 0
		for batch, err := range session.ProductFeed(context.Background(), 0) {
			if err != nil {
				b.Fatal(err)
			}
			n += len(batch.Products)
		}
		if n != products {
			b.Fatalf("baseline read %d products, want %d", n, products)
		}
		baseline = max(baseline, float64(n)/time.Since(start).Seconds())
	}

	b.ResetTimer()
	cmd := startPoller(b, st)
	status := waitInitialSync(b, st)
	took := time.Since(status.LastRunAt)
	published := hiperMsgs(b, st)
	if published != uint64(products) {
		b.Fatalf("%d events published, want %d", published, products)
	}
	rss := peakRSS(b, cmd.Process.Pid)
	// The poller's CPU time for the initial sync: on a loaded machine the
	// wall-clock figures swing with the neighbours, its own cost much less.
	cpu := processCPU(b, cmd.Process.Pid)

	// The delta: 100 variations repriced, synced on request.
	var changed []hiper.Product
	for _, p := range st.Sim.Sim.Products(st.Keys["acme"]) {
		if p.IsVariation() && len(changed) < 100 {
			p.Price = hiper.Decimal{Decimal: p.Price.Add(hiper.MustDecimal("1").Decimal)}
			changed = append(changed, p)
		}
	}
	if err := st.Sim.Sim.UpsertProducts(st.Keys["acme"], changed); err != nil {
		b.Fatal(err)
	}
	asked := time.Now()
	if _, err := syncstatus.RequestSync(context.Background(), st.JS, st.NS, "acme", syncstatus.Catalog, syncstatus.Request{}); err != nil {
		b.Fatal(err)
	}
	// Each repriced variation: its upsert and its price change.
	testkit.WaitFor(b, time.Minute, "the delta's events", func() bool { return hiperMsgs(b, st) >= published+200 })
	delta := time.Since(asked)
	b.StopTimer()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if os.Getenv("HIPERSYNC_BENCH_CPUPROFILE") != "" || os.Getenv("HIPERSYNC_BENCH_MEMPROFILE") != "" {
		_ = cmd.Wait()
	}

	b.ReportMetric(took.Seconds(), "initial-s")
	b.ReportMetric(float64(published)/took.Seconds(), "events/s")
	b.ReportMetric(baseline, "baseline-events/s")
	b.ReportMetric(rss, "peak-rss-MB")
	b.ReportMetric(cpu, "poller-cpu-s")
	b.ReportMetric(float64(delta.Milliseconds()), "delta-ms")
}

// startPoller starts the catalog-poller as a process of its own (the test
// binary as benchChild) on st, unpaced; it is killed when b ends.
func startPoller(b *testing.B, st *brokertest.Stack) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(st.Environ(), benchChild+"=1", "TOKEN_BROKER_ADDR="+st.BrokerAddr,
		"HIPER_BASE_URL="+st.Sim.URL, "HTTP_ADDR=127.0.0.1:0", "HIPERSYNC_INSECURE=1",
		// Unpaced, like the baseline: the figure is the poller's own cost.
		// At the default pace (5 calls a second) 200 batches take 40s.
		"POLL_TENANT_RATE=10000")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// waitInitialSync waits until acme's initial catalog sync is done.
func waitInitialSync(b *testing.B, st *brokertest.Stack) syncstatus.Status {
	var status syncstatus.Status
	testkit.WaitFor(b, 5*time.Minute, "the initial sync", func() bool {
		var err error
		status, _, err = syncstatus.GetStatus(context.Background(), st.JS, st.NS, "acme", syncstatus.Catalog)
		return err == nil && status.InitialDone && status.Lease == nil
	})
	return status
}

// hiperMsgs counts the catalog events in the HIPER stream (not the sync
// log's sync.completed, which a run that published leaves too).
func hiperMsgs(b *testing.B, st *brokertest.Stack) uint64 {
	s, err := st.JS.Stream(context.Background(), st.NS.Stream(events.StreamHiper))
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(st.NS.HiperSubject("*", "catalog.>")))
	if err != nil {
		b.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// peakRSS reads a process's peak resident memory (VmHWM), in MB.
func peakRSS(b *testing.B, pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}

// catalogBenchBounds give HIPER and the product-state bucket room for
// 200,000 products: the tests' small bounds (128 MiB, 32 MiB) hold about
// 100,000 events and 20,000 product families, and a full bucket stalls the
// initial sync until the bench times out.
var catalogBenchBounds = map[string]string{
	"HIPERSYNC_HIPER_MAX_BYTES": "1GiB", "HIPERSYNC_BUCKET_MAX_BYTES": "512MiB",
}

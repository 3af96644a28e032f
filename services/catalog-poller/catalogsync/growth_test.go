package catalogsync

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/stepscope"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// BenchmarkGrowthCatalog doubles the products of an initial catalog sync
// four times, 12,500 to 200,000 (parents with 4 variations each), and
// reports at each step the catalog-poller's CPU per product and its peak
// resident memory per product, both beyond what a poller syncing a single
// family (5 products) costs (measured first, the same way). The poller runs as its
// own process, as in BenchmarkInitialSync. Both should stay flat: a product
// costs the same however large the catalog. benchtable folds the steps into
// one row and a chart.
func BenchmarkGrowthCatalog(b *testing.B) {
	const variations = 4
	for range b.N {
		idleCPU, idleRSS := catalogStep(b, 1, variations)
		for n := 12_500; n <= 200_000; n *= 2 {
			cpu, rss := catalogStep(b, n/(1+variations), variations)
			b.ReportMetric((cpu-idleCPU)*1e6/float64(n), fmt.Sprintf("cpu-us/product@%d", n))
			b.ReportMetric((rss-idleRSS)*1024/float64(n), fmt.Sprintf("rss-KB/product@%d", n))
		}
	}
}

// catalogStep runs a catalog-poller over a stack of its own whose catalog
// has parents with their variations, until the initial sync is done, and
// returns the CPU seconds it used and its peak RSS in MB.
func catalogStep(b *testing.B, parents, variations int) (cpuSeconds, rssMB float64) {
	step := stepscope.New(b)
	defer step.Close()
	st := brokertest.Start(step, brokertest.Options{Bounds: catalogBenchBounds})
	loadInFamilies(b, st.Sim.Sim, st.Keys["acme"], hipersim.GenerateCatalog(parents, variations, 0, 1))
	cmd := startPoller(b, st)
	waitInitialSync(b, st)
	if published, want := hiperMsgs(b, st), uint64(parents*(1+variations)); published != want {
		b.Fatalf("%d events published, want %d", published, want)
	}
	cpuSeconds, rssMB = processCPU(b, cmd.Process.Pid), peakRSS(b, cmd.Process.Pid)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return cpuSeconds, rssMB
}

// processCPU is the CPU time, in seconds, process pid has used.
func processCPU(b *testing.B, pid int) float64 {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ)
}

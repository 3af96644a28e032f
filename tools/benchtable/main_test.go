package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestParsePairsBaselines(t *testing.T) {
	in := `goos: linux
BenchmarkFeed-2   	       3	 401234 ns/op	  52000 items/s	  80000 baseline-items/s
BenchmarkOrders   	       5	 100 ns/op	  6000 orders/s
BenchmarkPlain-2   	 1000	 2500 ns/op
PASS`
	rows, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("rows: %+v", rows)
	}
	if r := rows[0]; r.bench != "Feed" || r.unit != "items/s" || r.value != 52000 || !r.hasBaseline || r.baseline != 80000 {
		t.Fatalf("feed row: %+v", r)
	}
	if r := rows[1]; r.hasBaseline || r.unit != "orders/s" {
		t.Fatalf("orders row: %+v", r)
	}
	if r := rows[2]; r.unit != "ns/op" {
		t.Fatalf("plain row: %+v", r)
	}
	var out bytes.Buffer
	write(&out, rows)
	if !strings.Contains(out.String(), "0.65×") {
		t.Fatalf("ratio missing:\n%s", out.String())
	}
}

func TestGrowthSeriesFoldIntoOneRowAndAChart(t *testing.T) {
	in := `BenchmarkGrowthScheduler-2  1  9 ns/op  10.0 cpu-us/tenant@250  11.0 cpu-us/tenant@500  13.0 cpu-us/tenant@1000  2.0 heap-KB/tenant@250  2.1 heap-KB/tenant@500  2.2 heap-KB/tenant@1000
BenchmarkFeed-2  3  401234 ns/op  52000 items/s  80000 baseline-items/s`
	rows, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	rest, grown := growth(rows)
	if len(rest) != 1 || rest[0].bench != "Feed" {
		t.Fatalf("rows left: %+v", rest)
	}
	if len(grown) != 2 || grown[0].unit != "cpu-us/tenant" || len(grown[0].steps) != 3 || grown[0].steps[2] != (step{1000, 13}) {
		t.Fatalf("series: %+v", grown)
	}
	var out bytes.Buffer
	writeGrowth(&out, grown)
	// 13/10: 30 % apart, not flat; 2.2/2.0: 10 %, flat.
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 4 || !strings.Contains(lines[2], "NO") ||
		!strings.Contains(lines[2], "30 %") || !strings.Contains(lines[3], "10 %") || !strings.Contains(lines[3], "yes") ||
		!strings.Contains(lines[2], "250 → 10.00, 500 → 11.00, 1000 → 13.00") || !strings.Contains(lines[2], "1.30×") {
		t.Fatalf("growth table:\n%s", out.String())
	}
	var svg bytes.Buffer
	if err := chart(&svg, grown); err != nil {
		t.Fatal(err)
	}
	if s := svg.String(); strings.Count(s, "<polyline") != 2 || !strings.Contains(s, "Scheduler cpu-us/tenant") || !strings.HasPrefix(s, "<svg") {
		t.Fatalf("chart:\n%s", s)
	}
}

// BenchmarkGetToken's figures: saturated and paced latencies and the
// allocations per call, each beside the health check's; the offered rate of
// the paced rounds alone.
func TestGetTokenMetricsArePrinted(t *testing.T) {
	in := `BenchmarkGetToken-2  1  15394914797 ns/op  215.8 allocs/call  207.8 baseline-allocs/call  9100 B/call  8800 baseline-B/call  11122 baseline-calls/s  52.04 baseline-p99-ms  58.46 baseline-paced-p99-ms  3.1 baseline-paced10k-p99-ms  1.2 baseline-paced1k-p99-ms  1.9 baseline-paced5k-p99-ms  12294 calls/s  43.12 p99-ms  5561 paced-calls/s  0.869 paced-p50-ms  0.247 baseline-paced-p50-ms  320.0 paced-p99-ms  3.3 paced10k-p99-ms  1.1 paced1k-p99-ms  1.7 paced5k-p99-ms`
	rows, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	write(&out, rows)
	for _, want := range []string{"allocs/call", "B/call", "calls/s", "p99-ms", "paced-calls/s", "paced-p50-ms", "paced-p99-ms", "1.04×", "5.47×"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("%q missing:\n%s", want, out.String())
		}
	}
	for _, r := range rows {
		if r.unit != "paced-calls/s" && !r.hasBaseline {
			t.Errorf("%s has no baseline", r.unit)
		}
	}
	// The fixed loads in the order a reader counts them, not go test's.
	if i, j, k := strings.Index(out.String(), "paced1k-p99-ms"), strings.Index(out.String(), "paced5k-p99-ms"), strings.Index(out.String(), "paced10k-p99-ms"); i < 0 || i > j || j > k {
		t.Errorf("fixed loads out of order:\n%s", out.String())
	}
}

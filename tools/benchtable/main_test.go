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

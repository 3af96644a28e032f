// Command benchtable turns `go test -bench` output into the one table that
// `make bench` prints: each figure beside its same-run baseline and the ratio.
//
// A benchmark reports its figure with b.ReportMetric(v, "unit") and the
// baseline it measured in the same run with b.ReportMetric(v, "baseline-unit");
// the table pairs them. Figures without a baseline are shown alone.
//
// Growth benchmarks (growth.go) report a cost per unit at each doubling of
// their work; they follow the table, and -chart writes them as an SVG.
package main

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

type row struct {
	bench, unit     string
	value, baseline float64
	hasBaseline     bool
}

func main() {
	chartPath := flag.String("chart", "", "write the growth benchmarks' chart (SVG) to this file")
	flag.Parse()
	rows, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	if len(rows) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no benchmark results on stdin")
		os.Exit(1)
	}
	rows, grown := growth(rows)
	write(os.Stdout, rows)
	writeGrowth(os.Stdout, grown)
	if *chartPath != "" && len(grown) > 0 {
		if err := writeChart(*chartPath, grown); err != nil {
			fmt.Fprintln(os.Stderr, "benchtable:", err)
			os.Exit(1)
		}
	}
}

func writeChart(path string, ss []series) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := chart(f, ss); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parse reads benchmark result lines ("BenchmarkX-2  10  123 ns/op  45 items/s …").
func parse(r io.Reader) ([]row, error) {
	var rows []row
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		metrics := map[string]float64{}
		var order []string
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			metrics[f[i+1]] = v
			order = append(order, f[i+1])
		}
		// go test prints the units in byte order; a reader counts:
		// paced1k, paced5k, paced10k rather than paced10k, paced1k.
		slices.SortStableFunc(order, naturalCompare)
		for _, unit := range order {
			if strings.HasPrefix(unit, "baseline-") || unit == "ns/op" && len(order) > 1 {
				continue
			}
			base, ok := metrics["baseline-"+unit]
			rows = append(rows, row{bench: name, unit: unit, value: metrics[unit], baseline: base, hasBaseline: ok})
		}
	}
	return rows, sc.Err()
}

// naturalCompare orders a and b byte by byte, except that runs of digits
// compare as the numbers they write.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, _ := strconv.ParseUint(a[:da], 10, 64)
			nb, _ := strconv.ParseUint(b[:db], 10, 64)
			if na != nb {
				return cmp.Compare(na, nb)
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

// digits is how many ASCII digits s begins with.
func digits(s string) int {
	n := 0
	for n < len(s) && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	return n
}

func write(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "benchmark\tmetric\tvalue\tbaseline\tratio\t")
	for _, r := range rows {
		base, ratio := "—", "—"
		if r.hasBaseline {
			base = human(r.baseline)
			if r.baseline != 0 {
				ratio = fmt.Sprintf("%.2f×", r.value/r.baseline)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", r.bench, r.unit, human(r.value), base, ratio)
	}
	tw.Flush()
}

func human(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

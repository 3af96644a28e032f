package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// A growth benchmark doubles its work a few times and reports, for each
// step, a cost per unit of work as the metric "<cost>@<work>", e.g.
// "cpu-us/tenant@250" and "heap-KB/tenant@250". The table folds each such
// series into one row; the chart draws each series divided by its first
// step, so a flat line at 1 is cost that grows as the work does.

// series is one cost of one growth benchmark, step by step.
type series struct {
	bench, unit string
	steps       []step
}

type step struct{ work, value float64 }

// maxSpread is how far a series may stray: its largest step at most 20 %
// above its smallest.
const maxSpread = 0.20

// spread is max/min − 1 over the steps.
func (s series) spread() float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, st := range s.steps {
		lo, hi = min(lo, st.value), max(hi, st.value)
	}
	if lo <= 0 {
		return math.Inf(1)
	}
	return hi/lo - 1
}

// growth takes the "<cost>@<work>" rows out of rows, as series in the order
// they first appear; the other rows are returned as they were.
func growth(rows []row) (rest []row, out []series) {
	index := map[string]int{}
	for _, r := range rows {
		unit, at, ok := strings.Cut(r.unit, "@")
		work, err := strconv.ParseFloat(at, 64)
		if !ok || err != nil {
			rest = append(rest, r)
			continue
		}
		key := r.bench + "\x00" + unit
		i, seen := index[key]
		if !seen {
			i = len(out)
			index[key] = i
			out = append(out, series{bench: r.bench, unit: unit})
		}
		out[i].steps = append(out[i].steps, step{work, r.value})
	}
	for i := range out {
		slices.SortFunc(out[i].steps, func(a, b step) int { return int(math.Copysign(1, a.work-b.work)) })
	}
	return rest, out
}

// writeGrowth prints each series: its cost at every step and its spread.
func writeGrowth(w io.Writer, ss []series) {
	if len(ss) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "growth benchmark\tcost per unit\twork → cost at each doubling\tlast ÷ first\tspread\tflat (≤ 20 %)\t")
	for _, s := range ss {
		var cells []string
		for _, st := range s.steps {
			cells = append(cells, human(st.work)+" → "+human(st.value))
		}
		flat := "yes"
		if s.spread() > maxSpread {
			flat = "NO"
		}
		trend := "—"
		if first := s.steps[0].value; first != 0 {
			trend = fmt.Sprintf("%.2f×", s.steps[len(s.steps)-1].value/first)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f %%\t%s\t\n", s.bench, s.unit, strings.Join(cells, ", "), trend, 100*s.spread(), flat)
	}
	tw.Flush()
}

// chart draws every series as its cost per unit divided by that of its
// first step, against the doubling of the work, over the band of ±20 %.
func chart(w io.Writer, ss []series) error {
	const (
		width, height            = 640, 300
		left, right, top, bottom = 50, 250, 20, 40
		yMin, yMax               = 0.5, 1.5
	)
	palette := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}
	doublings := 0
	for _, s := range ss {
		doublings = max(doublings, len(s.steps)-1)
	}
	doublings = max(doublings, 1)
	plotW, plotH := float64(width-left-right), float64(height-top-bottom)
	x := func(i int) float64 { return float64(left) + plotW*float64(i)/float64(doublings) }
	y := func(v float64) float64 {
		v = min(max(v, yMin), yMax)
		return float64(top) + plotH*(yMax-v)/(yMax-yMin)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%.1f" height="%.1f" fill="#e8f4e8"/>`+"\n", left, y(1+maxSpread), plotW, y(1-maxSpread)-y(1+maxSpread))
	for _, v := range []float64{0.5, 0.8, 1, 1.2, 1.5} {
		fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ccc"/><text x="%d" y="%.1f" text-anchor="end">%.1f×</text>`+"\n",
			left, float64(left)+plotW, y(v), y(v), left-4, y(v)+4, v)
	}
	for i := 0; i <= doublings; i++ {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d×</text>`+"\n", x(i), height-bottom+16, 1<<i)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">work (doubled at each step)</text>`+"\n", float64(left)+plotW/2, height-6)
	fmt.Fprintf(&b, `<text x="%d" y="12">cost per unit ÷ cost per unit at the first step (band: ±20 %%)</text>`+"\n", left)
	for i, s := range ss {
		if len(s.steps) == 0 || s.steps[0].value == 0 {
			continue
		}
		color := palette[i%len(palette)]
		var pts []string
		for j, st := range s.steps {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(j), y(st.value/s.steps[0].value)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		ly := top + 14*i
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s %s</text>`+"\n",
			width-right+10, width-right+24, ly, ly, color, width-right+28, ly+4, xmlEscape(strings.TrimPrefix(s.bench, "Growth")), xmlEscape(s.unit))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

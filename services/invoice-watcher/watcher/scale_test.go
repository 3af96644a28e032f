package watcher_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
)

// BenchmarkScale follows 100,000 open orders over 200 tenants, ages spread
// over 3 days, at the production schedule, and reports the load: how long
// the first poll of every order takes, then Hiper calls a second and CPU
// over three minutes (the watcher with hiper-sim and token-broker in this
// process, and the NATS server when NATS_PID names it). It takes about nine
// minutes, so it runs only with INVOICE_WATCHER_SCALE=1 (`make bench` skips
// it); docs/invoices.md has its figures. It runs once, whatever b.N.
func BenchmarkScale(b *testing.B) {
	if os.Getenv("INVOICE_WATCHER_SCALE") == "" {
		b.Skip("set INVOICE_WATCHER_SCALE=1 to follow 100,000 orders for about nine minutes")
	}
	c := newCrowd(b, 200, 500, 72*time.Hour)
	b.ResetTimer()
	start := time.Now()
	self, server := cpuSeconds(strconv.Itoa(os.Getpid())), cpuSeconds(os.Getenv("NATS_PID"))
	c.h.start("scale", watcher.Config{})
	c.waitAllPolled(watcher.Config{})
	b.ReportMetric(time.Since(start).Seconds(), "first-poll-s")
	b.ReportMetric(cpuSeconds(strconv.Itoa(os.Getpid()))-self, "first-poll-cpu-s")
	b.ReportMetric(cpuSeconds(os.Getenv("NATS_PID"))-server, "first-poll-nats-cpu-s")
	// The first polls are bunched; a ceiling later they have spread out.
	// The waits are the measurement's windows, not waits for a condition.
	time.Sleep(watcher.MaxPollCeiling / 2)
	const window = 3 * time.Minute
	self, server = cpuSeconds(strconv.Itoa(os.Getpid())), cpuSeconds(os.Getenv("NATS_PID"))
	calls := c.h.calls.sum()
	time.Sleep(window)
	per := func(v float64) float64 { return v / window.Seconds() }
	b.ReportMetric(per(float64(c.h.calls.sum()-calls)), "hiper-calls/s")
	b.ReportMetric(100*per(cpuSeconds(strconv.Itoa(os.Getpid()))-self), "cpu-%")
	b.ReportMetric(100*per(cpuSeconds(os.Getenv("NATS_PID"))-server), "nats-cpu-%")
}

// cpuSeconds is the CPU time process pid has used, 0 when unknown.
func cpuSeconds(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if pid == "" || err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 15 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[13], 64)
	s, _ := strconv.ParseFloat(f[14], 64)
	return (u + s) / 100
}

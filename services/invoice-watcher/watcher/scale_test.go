package watcher_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
)

// TestScale follows 100,000 open orders over 200 tenants, ages spread over
// 3 days, at the production schedule, and logs the load: how long the first
// poll of every order takes, then Hiper calls a second and CPU over three
// minutes (the watcher with hiper-sim and token-broker in this process, and
// the NATS server when NATS_PID names it). It takes about nine minutes, so it
// runs only with INVOICE_WATCHER_SCALE=1; docs/invoices.md has its figures.
func TestScale(t *testing.T) {
	if os.Getenv("INVOICE_WATCHER_SCALE") == "" {
		t.Skip("set INVOICE_WATCHER_SCALE=1 to follow 100,000 orders for about nine minutes")
	}
	c := newCrowd(t, 200, 500, 72*time.Hour)
	start := time.Now()
	self, server := cpuSeconds(strconv.Itoa(os.Getpid())), cpuSeconds(os.Getenv("NATS_PID"))
	c.h.start("scale", watcher.Config{})
	c.waitAllPolled(15 * time.Minute)
	t.Logf("first poll of %d orders: %s; CPU %.0f s here, %.0f s in NATS", len(c.orders), time.Since(start).Round(time.Second),
		cpuSeconds(strconv.Itoa(os.Getpid()))-self, cpuSeconds(os.Getenv("NATS_PID"))-server)
	// The first polls are bunched; a ceiling later they have spread out.
	time.Sleep(watcher.MaxPollCeiling / 2)
	const window = 3 * time.Minute
	self, server = cpuSeconds(strconv.Itoa(os.Getpid())), cpuSeconds(os.Getenv("NATS_PID"))
	calls := c.h.calls.sum()
	time.Sleep(window)
	per := func(v float64) float64 { return v / window.Seconds() }
	t.Logf("over %s: %.0f Hiper calls/s; CPU %.0f%% here, %.0f%% in NATS", window, per(float64(c.h.calls.sum()-calls)),
		100*per(cpuSeconds(strconv.Itoa(os.Getpid()))-self), 100*per(cpuSeconds(os.Getenv("NATS_PID"))-server))
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

package natsconn

import (
	"bytes"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// A NATS that cannot be reached is reported with its URL, never with the
// password or token in it.
func TestConnectErrorRedactsThePassword(t *testing.T) {
	t.Parallel()
	addr := testkit.FreeAddr(t) // a port nothing listens on
	for _, url := range []string{"nats://ana:S3cretPass@" + addr, "nats://T0kenValue@" + addr} {
		var logs bytes.Buffer
		_, err := Connect("test", config.NATS{URL: url}, slog.New(slog.NewTextHandler(&logs, nil)))
		if err == nil {
			t.Fatal("want an error")
		}
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("error does not name the server: %v", err)
		}
		for _, secret := range []string{"S3cretPass", "T0kenValue"} {
			if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
				t.Errorf("secret %s leaked: %v / %s", secret, err, logs.String())
			}
		}
	}
}

// The machine's NATS takes a plain connection; the log names it redacted.
func TestConnectLogsTheRedactedURL(t *testing.T) {
	t.Parallel()
	url := testkit.NATSURL()
	var logs bytes.Buffer
	nc, err := Connect("test", config.NATS{URL: url}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !strings.Contains(logs.String(), "connected to NATS") {
		t.Errorf("no connection log: %s", logs.String())
	}
}

func TestOptionsRefuseABadSeed(t *testing.T) {
	t.Parallel()
	f := t.TempDir() + "/bad.nk"
	if err := os.WriteFile(f, []byte("not a seed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Options("x", config.NATS{NKey: f}, nil); err == nil || !strings.Contains(err.Error(), "NATS_NKEY") {
		t.Fatalf("want a NATS_NKEY error, got %v", err)
	}
}

// Drain returns only once what was in flight was handled: a service that
// closes after it loses nothing.
func TestDrainWaitsForTheMessagesInFlight(t *testing.T) {
	t.Parallel()
	url := testkit.NATSURL()
	nc, err := Connect("drain-test", config.NATS{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	subject := "drain-test." + t.Name() + "." + strconv.FormatInt(time.Now().UnixNano(), 36)
	var handled atomic.Int64
	if _, err := nc.Subscribe(subject, func(*nats.Msg) {
		time.Sleep(20 * time.Millisecond) // a handler still at work
		handled.Add(1)
	}); err != nil {
		t.Fatal(err)
	}
	const n = 10
	for range n {
		if err := nc.Publish(subject, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := Drain(nc, 10*time.Second); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if got := handled.Load(); got != n || !nc.IsClosed() {
		t.Fatalf("after Drain: %d of %d messages handled, closed %v", got, n, nc.IsClosed())
	}
}

package service

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/natstest"
	"github.com/hipersync/hipersync/pkg/testkit"
)

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A service started while its NATS cluster is down stays up and not ready,
// and becomes ready once the cluster is back, without a restart.
func TestOpenWaitsForJetStream(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node NATS cluster")
	}
	c := natstest.StartCluster(t, 3)
	for _, nd := range c.Nodes {
		nd.Kill()
	}
	httpAddr := testkit.FreeAddr(t)
	common := config.Common{NATS: config.NATS{URL: c.URL()}, HTTPAddr: httpAddr, TokenBrokerAddr: testkit.FreeAddr(t),
		EventsFormat: "json", Namespace: "svcwait", StreamReplicas: 3, Insecure: true}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opened := make(chan error, 1)
	var p *Process
	go func() {
		var err error
		p, err = Open(ctx, "test-service", common, config.Map(nil), io.Discard)
		opened <- err
	}()
	testkit.WaitFor(t, 30*time.Second, "/healthz", func() bool { return status("http://"+httpAddr+"/healthz") == http.StatusOK })
	if code := status("http://" + httpAddr + "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz answered %d while NATS is down", code)
	}
	select {
	case err := <-opened:
		t.Fatalf("Open returned while NATS is down: %v", err)
	default:
	}
	for _, nd := range c.Nodes {
		nd.Restart()
	}
	select {
	case err := <-opened:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("Open did not return after the cluster came back")
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() {
		ran <- p.Run(runCtx, func(ctx context.Context) error { <-ctx.Done(); return nil })
	}()
	testkit.WaitFor(t, 10*time.Second, "/readyz", func() bool { return status("http://"+httpAddr+"/readyz") == http.StatusOK })
	stop()
	cancel()
	if err := testkit.Recv(t, ran, 10*time.Second, "Run to return"); err != nil {
		t.Fatal(err)
	}
}

// get answers url's status code and body.
func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A NATS server with no room left for the namespace's bounds refuses its
// streams: the service stays up and not ready, /readyz and an error log say
// what the operator must do, a metric counts the refusals (and alerts),
// and once room is made the service becomes ready without a restart. The
// same holds for what a service provisions as it starts (a bucket).
func TestNoStorageForTheBoundsKeepsTheServiceNotReady(t *testing.T) {
	c := natstest.StartServer(t, "") // max_file_store: 1GB (1024 MiB)
	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Another tenant of the server holds most of its max_file_store.
	fill := func(mib int64) {
		t.Helper()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILLER", Subjects: []string{"filler"}, MaxBytes: mib << 20}); err != nil {
			t.Fatal(err)
		}
	}
	makeRoom := func() {
		t.Helper()
		if err := js.DeleteStream(ctx, "FILLER"); err != nil {
			t.Fatal(err)
		}
	}
	fill(1000)

	httpAddr := testkit.FreeAddr(t)
	common := config.Common{NATS: config.NATS{URL: c.URL()}, HTTPAddr: httpAddr, TokenBrokerAddr: testkit.FreeAddr(t),
		EventsFormat: "json", Namespace: "svcroom", StreamReplicas: 1, Insecure: true,
		StoreMaxBytes: 64 << 20, HiperMaxBytes: 16 << 20, DeadLetterMaxBytes: 16 << 20, BucketMaxBytes: 64 << 20}
	var logs testkit.SyncBuffer
	opened := make(chan error, 1)
	var p *Process
	go func() {
		var err error
		p, err = Open(ctx, "test-service", common, config.Map(nil), &logs)
		opened <- err
	}()
	ready, metrics := "http://"+httpAddr+"/readyz", "http://"+httpAddr+"/metrics"
	refusedSaysWhy := func(what string) {
		t.Helper()
		var body string
		testkit.WaitFor(t, 30*time.Second, "/readyz to say why "+what+" is refused", func() bool {
			var code int
			code, body = get(ready)
			return code == http.StatusServiceUnavailable && strings.Contains(body, "insufficient storage") &&
				strings.Contains(body, what) && strings.Contains(body, "max_file_store") && strings.Contains(body, "HIPERSYNC_STORE_MAX_BYTES")
		})
		if _, m := get(metrics); !regexp.MustCompile(`(?m)^hipersync_provision_no_storage_total [1-9]`).MatchString(m) {
			t.Errorf("/metrics does not count the refusals:\n%s", m)
		}
		testkit.WaitFor(t, 10*time.Second, "an error log saying what to do", func() bool {
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) && strings.Contains(line, what) && strings.Contains(line, "max_file_store") {
					return true
				}
			}
			return false
		})
	}
	refusedSaysWhy("stream svcroom_STORE")
	select {
	case err := <-opened:
		t.Fatalf("Open returned while the server has no room: %v", err)
	default:
	}
	makeRoom()
	if err := testkit.Recv(t, opened, 60*time.Second, "Open once there is room"); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() {
		ran <- p.Run(runCtx, func(ctx context.Context) error { <-ctx.Done(); return nil })
	}()
	testkit.WaitFor(t, 10*time.Second, "/readyz once there is room", func() bool { code, _ := get(ready); return code == http.StatusOK })

	// A bucket the service provisions as it runs; its streams hold 96 MiB.
	fill(900)
	ensured := make(chan error, 1)
	go func() {
		_, err := events.EnsureKV(p.Background, p.JS, p.NS, "big")
		ensured <- err
	}()
	refusedSaysWhy("bucket svcroom_big")
	makeRoom()
	if err := testkit.Recv(t, ensured, 60*time.Second, "the bucket once there is room"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "/readyz once the bucket is there", func() bool { code, _ := get(ready); return code == http.StatusOK })
	stop()
	if err := testkit.Recv(t, ran, 10*time.Second, "Run to return"); err != nil {
		t.Fatal(err)
	}
}

package service

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/config"
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
	httpAddr := natstest.FreeAddr(t)
	common := config.Common{NATS: config.NATS{URL: c.URL()}, HTTPAddr: httpAddr, TokenBrokerAddr: natstest.FreeAddr(t),
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

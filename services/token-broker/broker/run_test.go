package broker_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/broker"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// The binary becomes ready, answers gRPC on GRPC_ADDR, and stops cleanly
// when its context ends (SIGTERM).
func TestMainServesAndStops(t *testing.T) {
	t.Parallel()
	_, js := testkit.Connect(t)
	prefix := testkit.Prefix(t)
	ns := events.Namespace{Prefix: prefix}
	t.Cleanup(func() { _ = js.DeleteKeyValue(context.Background(), ns.Bucket(tenant.Bucket)) })
	httpAddr, grpcAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	vars := map[string]string{
		"NATS_URL": testkit.NATSURL(), "REDIS_URL": testkit.RedisURL(),
		"HIPERSYNC_NAMESPACE": prefix, "HTTP_ADDR": httpAddr, "GRPC_ADDR": grpcAddr, config.InsecureEnv: "1",
		"HIPERSYNC_MASTER_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	}
	maps.Copy(vars, testkit.SmallBounds)
	env := config.Map(vars)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs brokertest.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- broker.Main(ctx, env, &logs) }()

	ready := func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	testkit.WaitFor(t, 20*time.Second, "/readyz", ready)
	cl, err := brokerclient.Dial(grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	callCtx, callCancel := context.WithTimeout(ctx, 10*time.Second)
	defer callCancel()
	if _, err := cl.Token(callCtx, "nobody"); !errors.Is(err, tenant.ErrUnknown) {
		t.Fatalf("a token for a tenant never connected: want ErrUnknown, got %v", err)
	}
	cancel()
	if err := testkit.Recv(t, done, 30*time.Second, "Main to stop"); err != nil {
		t.Fatalf("Main: %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"token-broker stopped"`) {
		t.Fatalf("no stop logged: %s", logs.String())
	}
}

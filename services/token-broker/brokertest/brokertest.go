// Package brokertest starts the real stack a hipersync service's tests run
// against: a namespace of its own on the machine's NATS (streams provisioned,
// deleted afterwards), a Redis key prefix, an in-process hiper-sim, and a real
// token-broker serving gRPC on loopback with its tenants connected. Nothing
// is mocked; everything is cleaned up by t.Cleanup.
package brokertest

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/hipersim/simtest"
	"github.com/hipersync/hipersync/pkg/natsconn"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/pkg/tlsfiles"
	"github.com/hipersync/hipersync/pkg/tlsfiles/tlstest"
	"github.com/hipersync/hipersync/services/token-broker/broker"
)

// Options shape the stack; zero values are sensible.
type Options struct {
	// Tenants are connected with a fresh hiper-sim account each (seeded with
	// Seed). Default: one tenant, "acme".
	Tenants []string
	// Seed of each account: hipersim.SeedDemo or SeedEmpty (default empty).
	Seed string
	// Sim tunes hiper-sim; its Keys and Seed are set by the stack.
	Sim hipersim.Config
	// Settings are applied to every tenant after connecting (optional).
	Settings *brokerv1.TenantSettings
	// TracerProvider and Propagator, when set, trace token-broker's gRPC
	// server and Hiper calls (broker.Deps), so a test sees its spans.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	// TLS serves token-broker over mutual TLS with per-method
	// authorization, as in production; Stack.Broker calls as the admin.
	TLS bool
	// Bounds override testkit.SmallBounds for this stack, e.g. a larger
	// HIPERSYNC_HIPER_MAX_BYTES for a bench that publishes more than the
	// small bound holds (optional).
	Bounds map[string]string
}

// Stack is a running test stack.
type Stack struct {
	NS     events.Namespace
	NATS   *nats.Conn
	JS     jetstream.JetStream
	Redis  *redis.Client
	Sim    *simtest.Server
	Broker *brokerclient.Client
	// BrokerAddr is token-broker's gRPC address (TOKEN_BROKER_ADDR).
	BrokerAddr string
	// StopBroker stops token-broker's gRPC server: from then on every call
	// to it fails as unavailable, as in an outage or a rollout.
	StopBroker func()
	// Keys maps each tenant to its hiper-sim account's security key.
	Keys map[string]string
	// CA signs token-broker's certificate (Options.TLS): Issue a client
	// certificate with it for a service ("order-forwarder") or "admin".
	CA *tlstest.CA
	// ServerTLS are token-broker's certificate files (rotate them with
	// CA.Issue(t, dir of ServerTLS.Cert, "token-broker", "token-broker")).
	ServerTLS tlsfiles.Files

	bounds     map[string]string // the namespace's bounds, for Env
	tokenCalls atomic.Int64
}

// ClientTLS issues a client certificate for service (its identity
// spiffe://hipersync/<service>) and returns the files a client needs:
// TOKEN_BROKER_TLS_CA, _CERT and _KEY.
func (s *Stack) ClientTLS(t testing.TB, service string) tlsfiles.Files {
	t.Helper()
	return s.CA.Issue(t, t.TempDir(), service, service)
}

// Env is what a process on the stack (a service, the CLI) reads to reach
// its NATS and namespace, the namespace's small bounds included; add the
// rest (TOKEN_BROKER_ADDR, HIPER_BASE_URL, ...) to it.
func (s *Stack) Env() map[string]string {
	env := map[string]string{"NATS_URL": testkit.NATSURL(), "HIPERSYNC_NAMESPACE": s.NS.Prefix}
	maps.Copy(env, s.bounds)
	return env
}

// Environ is Env as "NAME=value" after os.Environ(), for an exec.Cmd.
func (s *Stack) Environ() []string {
	env := os.Environ()
	for k, v := range s.Env() {
		env = append(env, k+"="+v)
	}
	return env
}

// Start starts the stack for t.
func Start(t testing.TB, o Options) *Stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if len(o.Tenants) == 0 {
		o.Tenants = []string{"acme"}
	}
	if o.Seed == "" {
		o.Seed = hipersim.SeedEmpty
	}
	// The namespace has the bounds every process a test starts on it reads
	// (Env), so whoever provisions a stream gives it the same small bound.
	vars := maps.Clone(testkit.SmallBounds)
	maps.Copy(vars, o.Bounds)
	bounds := config.NewLoader(config.Map(vars))
	ns := service.NamespaceOf(bounds.LoadCommon())
	if err := bounds.Err(); err != nil {
		t.Fatal(err)
	}
	ns.Prefix = testkit.Prefix(t)
	s := &Stack{NS: ns, Keys: map[string]string{}, bounds: vars}
	simCfg := o.Sim
	simCfg.Seed = o.Seed
	for _, id := range o.Tenants {
		s.Keys[id] = testkit.RandomHex(32)
		simCfg.Keys = append(simCfg.Keys, s.Keys[id])
	}
	s.Sim = simtest.Start(t, simCfg)

	l := config.NewLoader(os.Getenv)
	natsCfg := l.LoadNATS()
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	nc, err := natsconn.Connect("brokertest", natsCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s.NATS = nc
	s.JS, _ = jetstream.New(nc)
	t.Cleanup(func() { testkit.DeleteNamespace(t, s.JS, s.NS.Prefix) })
	if err := events.EnsureStreams(ctx, s.JS, s.NS); err != nil {
		t.Fatalf("provision streams: %v", err)
	}

	opts, err := redis.ParseURL(testkit.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	s.Redis = redis.NewClient(opts)
	t.Cleanup(func() { testkit.DeleteRedisKeys(s.Redis, s.NS.Prefix); _ = s.Redis.Close() })

	master := make([]byte, 32)
	_, _ = rand.Read(master)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var grpcOpts []grpc.ServerOption
	var adminTLS tlsfiles.Files
	if o.TLS {
		s.CA = tlstest.NewCA(t)
		s.ServerTLS = s.CA.Issue(t, t.TempDir(), "token-broker", "token-broker", "localhost")
		if grpcOpts, err = (broker.Security{TLS: s.ServerTLS}).ServerOptions(log); err != nil {
			t.Fatal(err)
		}
		adminTLS = s.ClientTLS(t, "admin")
	}
	grpcOpts = append(grpcOpts, grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if info.FullMethod == brokerv1.TokenService_GetToken_FullMethodName {
			s.tokenCalls.Add(1)
		}
		return h(ctx, req)
	}))
	srv, b, err := broker.Start(ctx, broker.Deps{
		GRPCOptions: grpcOpts,
		NATS:        nc, Redis: s.Redis, Namespace: s.NS, HiperBaseURL: s.Sim.URL, MasterKey: master,
		Health: telemetry.NewHealth(), Log: log,
		TracerProvider: o.TracerProvider, Propagator: o.Propagator,
	})
	if err != nil {
		t.Fatalf("start token-broker: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	go func() { _ = b.Run(ctx) }()
	t.Cleanup(srv.Stop)
	s.StopBroker = srv.Stop
	s.BrokerAddr = lis.Addr().String()
	s.Broker, err = brokerclient.DialTLS(s.BrokerAddr, adminTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Broker.Close() })

	for _, id := range o.Tenants {
		if _, err := s.Broker.Tenants.ConnectTenant(ctx, &brokerv1.ConnectTenantRequest{TenantId: id, SecurityKey: s.Keys[id]}); err != nil {
			t.Fatalf("connect tenant %s: %v", id, err)
		}
		if o.Settings != nil {
			if _, err := s.Broker.Tenants.UpdateTenantSettings(ctx, &brokerv1.UpdateTenantSettingsRequest{TenantId: id, Settings: o.Settings}); err != nil {
				t.Fatalf("settings of %s: %v", id, err)
			}
		}
	}
	return s
}

// TokenCalls is how many GetToken calls token-broker has answered, counted
// by its server: what a caller's own cache spares shows here.
func (s *Stack) TokenCalls() int64 { return s.tokenCalls.Load() }

// Tenants opens the tenants bucket, e.g. for a tenant.Directory.
func (s *Stack) Tenants(t testing.TB) jetstream.KeyValue {
	t.Helper()
	kv, err := s.JS.KeyValue(context.Background(), s.NS.Bucket(tenant.Bucket))
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// FreeAddr returns a loopback address no one listens on, for a server a
// test starts (testkit.FreeAddr).
var FreeAddr = testkit.FreeAddr

// SyncBuffer is a buffer safe to read while a process under test writes
// it (testkit.SyncBuffer).
type SyncBuffer = testkit.SyncBuffer

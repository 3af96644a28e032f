package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/natsconn"
	"github.com/hipersync/hipersync/pkg/redisconn"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Settings is token-broker's configuration from the environment.
type Settings struct {
	config.Common
	GRPCAddr  string
	MasterKey []byte
	// PreviousMasterKeys open what an earlier master key sealed, while a
	// rotation is under way (HIPERSYNC_MASTER_KEY_PREVIOUS).
	PreviousMasterKeys [][]byte
	Security           Security
	// RedisTLSCA is REDIS_TLS_CA: PEM certificates a rediss:// Redis must
	// chain to, instead of the system's roots.
	RedisTLSCA string
}

// LoadSettings reads the environment; the error names every bad variable.
func LoadSettings(getenv config.Env) (Settings, error) {
	l := config.NewLoader(getenv)
	s := Settings{
		Common:    l.LoadCommon(),
		GRPCAddr:  l.Addr("GRPC_ADDR", config.DefaultGRPCAddr),
		MasterKey: l.Key32("HIPERSYNC_MASTER_KEY"),

		PreviousMasterKeys: l.Key32List("HIPERSYNC_MASTER_KEY_PREVIOUS"),
		Security:           loadSecurity(l),
		RedisTLSCA:         l.File("REDIS_TLS_CA"),
	}
	return s, l.Err()
}

// Main runs token-broker until ctx is done: it serves gRPC on GRPC_ADDR and
// health and metrics on HTTP_ADDR (service.Main: token-broker keeps only
// key-value state and dials no token-broker), then stops in the reverse
// order of intake: the gRPC server finishes the calls in flight, the Broker
// stops, then what the Process holds.
func Main(ctx context.Context, getenv config.Env, logOut io.Writer) error {
	s, err := LoadSettings(getenv)
	if err != nil {
		return err
	}
	return service.Main(ctx, "token-broker", s.Common, getenv, logOut, func(p *service.Process) (service.Runner, error) {
		return start(ctx, s, p)
	}, service.WithoutStreams(), service.WithoutTokenBroker())
}

// start opens Redis, starts the Broker and listens on GRPC_ADDR; what it
// returns serves until its context ends.
func start(ctx context.Context, s Settings, p *service.Process) (service.Runner, error) {
	rdb, err := redisconn.Open(s.RedisURL, s.RedisTLSCA)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (service.Runner, error) {
		rdb.Close()
		return nil, err
	}
	grpcOpts, err := s.Security.ServerOptions(p.Log)
	if err != nil {
		return fail(err)
	}
	srv, b, err := Start(events.ContextWithLogger(ctx, p.Log), Deps{
		GRPCOptions: grpcOpts, Reflection: s.Security.Reflection,
		NATS: p.NATS, Redis: rdb, Namespace: p.NS,
		HiperBaseURL: s.HiperBaseURL, MasterKey: s.MasterKey, PreviousMasterKeys: s.PreviousMasterKeys, Health: p.Health, Log: p.Log,
	})
	if err != nil {
		return fail(err)
	}
	lis, err := net.Listen("tcp", s.GRPCAddr)
	if err != nil {
		return fail(fmt.Errorf("listen for gRPC on %s: %w", s.GRPCAddr, err))
	}
	return service.RunFunc(func(ctx context.Context) error {
		defer rdb.Close()
		served := make(chan error, 1)
		go func() { served <- srv.Serve(lis) }()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ran := make(chan error, 1)
		go func() { ran <- b.Run(ctx) }()
		p.Log.Info("token-broker serving", "grpc", lis.Addr().String())
		select {
		case <-ctx.Done():
		case err := <-served:
			cancel()
			return errors.Join(fmt.Errorf("serve gRPC: %w", err), <-ran)
		}
		// Stop taking calls, finish those in flight, then the rest.
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			srv.Stop()
		}
		return <-ran
	}), nil
}

// Deps are what a token-broker needs from outside; Start wires them.
type Deps struct {
	NATS         *nats.Conn
	Redis        redis.UniversalClient // nil: tokens in memory only
	Namespace    events.Namespace
	HiperBaseURL string
	MasterKey    []byte
	// PreviousMasterKeys, during a rotation, still open what they sealed;
	// Start seals those keys again under MasterKey.
	PreviousMasterKeys [][]byte
	Health             *telemetry.Health
	Log                *slog.Logger
	// GRPCOptions protect the server (Security.ServerOptions: mutual TLS
	// and authorization); none serves plaintext to anyone.
	GRPCOptions []grpc.ServerOption
	// Reflection registers gRPC reflection (GRPC_REFLECTION).
	Reflection bool
	// Cache overrides the token cache's tuning (tests shorten its timings).
	Cache TokenCacheConfig
	// TracerProvider and Propagator trace the gRPC server and the Hiper
	// calls; nil means otel's globals, which the binary sets up
	// (telemetry.SetupTracing). Tests set them to see the spans.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

// Start provisions the tenants bucket, starts the Broker and returns a gRPC
// server with the Broker's services, health and (if asked) reflection registered; the
// caller serves it and runs the Broker. The dev run and tests use it too.
func Start(ctx context.Context, d Deps) (*grpc.Server, *Broker, error) {
	js, err := jetstream.New(d.NATS)
	if err != nil {
		return nil, nil, fmt.Errorf("open jetstream: %w", err)
	}
	kv, err := events.EnsureKV(ctx, js, d.Namespace, tenant.Bucket)
	if err != nil {
		return nil, nil, err
	}
	sealer, err := tenant.NewSealer(d.MasterKey, d.PreviousMasterKeys...)
	if err != nil {
		return nil, nil, fmt.Errorf("HIPERSYNC_MASTER_KEY: %w", err)
	}
	hopts := []hiper.Option{hiper.WithLogger(d.Log), hiper.WithMetrics(d.Health.Registry)}
	var gopts []otelgrpc.Option
	if d.TracerProvider != nil {
		hopts = append(hopts, hiper.WithTracerProvider(d.TracerProvider))
		gopts = append(gopts, otelgrpc.WithTracerProvider(d.TracerProvider))
	}
	if d.Propagator != nil {
		gopts = append(gopts, otelgrpc.WithPropagators(d.Propagator))
	}
	client, err := hiper.New(d.HiperBaseURL, hopts...)
	if err != nil {
		return nil, nil, err
	}
	cache := d.Cache
	cache.Redis = d.Redis
	if cache.KeyPrefix == "" {
		cache.KeyPrefix = "hipersync:" + d.Namespace.Prefix + ":"
	}
	b, err := New(ctx, Config{Issuer: client, Tenants: kv, Sealer: sealer, Cache: cache, Registry: d.Health.Registry, Log: d.Log})
	if err != nil {
		return nil, nil, err
	}
	if len(d.PreviousMasterKeys) > 0 {
		// A rotation: seal every stored key again under the current master
		// key, so the previous one can be dropped. Keys still sealed under
		// it keep working meanwhile.
		n, err := b.Registry.Reseal(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("seal stored keys under the new master key: %w", err)
		}
		d.Log.Info("master key rotation: stored keys sealed under the current master key", "resealed", n)
	}

	srv := grpc.NewServer(append([]grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(gopts...)),
		grpc.NumStreamWorkers(streamWorkers),
	}, d.GRPCOptions...)...)
	b.Register(srv)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	rr := &redisReadiness{rdb: d.Redis}
	go followReadiness(ctx, hs, d.NATS, rr)
	if d.Reflection {
		reflection.Register(srv)
	}

	d.Health.AddCheck("nats", natsconn.Check(d.NATS))
	if d.Redis != nil {
		d.Health.AddCheck("redis", rr.check)
	}
	return srv, b, nil
}

// streamWorkers are the goroutines that serve gRPC calls, kept from one
// call to the next. Without them each call gets a new goroutine whose stack
// grows (and is copied) on the way through gRPC's receive path: 5 to 8 % of
// the CPU of a GetToken with 50 callers, 2 to 3 % with them. They cover the
// tens of calls the services have in flight; a call beyond them gets a
// goroutine of its own, as before. Each idle one costs only its stack.
const streamWorkers = 64

// redisReadiness is Redis's part in a replica's readiness. A replica is not
// ready until Redis has answered once since it started, so a rollout with a
// wrong REDIS_URL, or a network policy that blocks Redis, stops at its first
// new pod while the old ones keep serving. Once Redis has answered, losing
// it only degrades the replica (tokens served from its memory: one Hiper
// token call per replica and tenant, HipersyncTokenCacheDegraded): taking
// every replica out of the Service for a Redis outage would stop every Hiper
// call instead.
type redisReadiness struct {
	rdb      redis.UniversalClient // nil: no Redis, nothing to check
	answered atomic.Bool
}

func (r *redisReadiness) check(ctx context.Context) error {
	if r.rdb == nil {
		return nil
	}
	err := r.rdb.Ping(ctx).Err()
	switch {
	case err == nil:
		r.answered.Store(true)
		return nil
	case r.answered.Load():
		return &telemetry.DegradedError{Err: fmt.Errorf("redis unreachable, tokens served per replica: %w", err)}
	default:
		return fmt.Errorf("redis has not answered since start: %w", err)
	}
}

// redisPingTimeout bounds readiness's Redis ping.
const redisPingTimeout = time.Second

// followReadiness keeps the gRPC health status (what the readiness probe
// asks) in step with NATS and Redis: without NATS the tenant registry
// cannot be read, so the replica leaves the Service until it is back; Redis
// as redisReadiness says.
func followReadiness(ctx context.Context, hs *health.Server, nc *nats.Conn, rr *redisReadiness) {
	set := func() {
		st := healthpb.HealthCheckResponse_SERVING
		pingCtx, cancel := context.WithTimeout(ctx, redisPingTimeout)
		err := rr.check(pingCtx)
		cancel()
		var degraded *telemetry.DegradedError
		if !nc.IsConnected() || err != nil && !errors.As(err, &degraded) {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		for _, svc := range []string{"", "hipersync.broker.v1.TokenService", "hipersync.broker.v1.TenantService"} {
			hs.SetServingStatus(svc, st)
		}
	}
	set()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			hs.Shutdown() // NOT_SERVING while the server drains
			return
		case <-t.C:
			set()
		}
	}
}

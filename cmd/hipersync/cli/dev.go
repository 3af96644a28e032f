package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/services/token-broker/broker"
)

const devTenant = "demo"

// devConfig is where the dev run puts each part.
type devConfig struct {
	dataDir    string
	natsPort   int
	simAddr    string
	brokerAddr string
	httpAddr   string
	redisURL   string
	masterKey  []byte
}

// devRun is the whole system in one process: the same code paths as the
// separate binaries, wired to an embedded NATS and an in-process hiper-sim.
type devRun struct {
	cfg     devConfig
	log     *slog.Logger
	natsSrv *natsserver.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	ns      events.Namespace
	simSrv  *http.Server
	grpcSrv *grpc.Server
	health  *telemetry.Health
	// stops run in reverse order of starting.
	stops []func()
}

func runDev(ctx context.Context, e Env, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print where each part listens as JSON")
	cfg := devConfig{}
	fs.StringVar(&cfg.dataDir, "data", ".data/dev", "folder for NATS's JetStream data and the dev master key")
	fs.IntVar(&cfg.natsPort, "nats-port", 4223, "port of the embedded NATS (not 4222, to leave a NATS already there alone)")
	fs.StringVar(&cfg.simAddr, "sim-addr", "127.0.0.1:8089", "hiper-sim's address")
	fs.StringVar(&cfg.brokerAddr, "broker-addr", "127.0.0.1:9091", "token-broker's gRPC address")
	fs.StringVar(&cfg.httpAddr, "http-addr", "127.0.0.1:8090", "/healthz, /readyz and /metrics of the dev run")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("dev takes no arguments")
	}
	cfg.redisURL = e.Getenv("REDIS_URL")
	began := time.Now()
	d := &devRun{cfg: cfg, log: telemetry.NewLogger("hipersync-dev", io.Discard, slog.LevelInfo), health: telemetry.NewHealth()}
	if e.Getenv("LOG_LEVEL") != "" {
		d.log = telemetry.NewLogger("hipersync-dev", e.Stderr, telemetry.LevelFromEnv(e.Getenv))
	}
	defer d.stop()
	if err := d.start(ctx, e); err != nil {
		return err
	}
	d.printGuide(e.Stdout, time.Since(began), *asJSON)
	<-ctx.Done()
	fmt.Fprintln(e.Stdout, "stopping…")
	return nil
}

func (d *devRun) start(ctx context.Context, e Env) error {
	if err := os.MkdirAll(d.cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("create the data folder: %w", err)
	}
	key, err := d.masterKey(e)
	if err != nil {
		return err
	}
	d.cfg.masterKey = key
	if err := d.startNATS(); err != nil {
		return err
	}
	if err := d.startSim(); err != nil {
		return err
	}
	if err := d.startBroker(ctx); err != nil {
		return err
	}
	waitHTTP, err := d.health.Serve(ctx, d.cfg.httpAddr, d.log)
	if err != nil {
		return err
	}
	d.stops = append(d.stops, func() { _ = waitHTTP() })
	return d.connectDemo(ctx)
}

// masterKey is HIPERSYNC_MASTER_KEY or, for the dev run only, a key kept in
// the data folder so that a restart still opens the stored security keys.
func (d *devRun) masterKey(e Env) ([]byte, error) {
	if v := e.Getenv("HIPERSYNC_MASTER_KEY"); v != "" {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != 32 {
			return nil, errors.New("HIPERSYNC_MASTER_KEY: want base64 of exactly 32 bytes")
		}
		return b, nil
	}
	path := filepath.Join(d.cfg.dataDir, "master.key")
	if b, err := os.ReadFile(path); err == nil {
		if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("keep the dev master key: %w", err)
	}
	return k, nil
}

func (d *devRun) startNATS() error {
	srv, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "hipersync-dev", Host: "127.0.0.1", Port: d.cfg.natsPort,
		JetStream: true, StoreDir: filepath.Join(d.cfg.dataDir, "nats"), NoSigs: true, NoLog: true,
	})
	if err != nil {
		return fmt.Errorf("configure the embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("the embedded NATS did not start on 127.0.0.1:%d (is the port taken? use --nats-port)", d.cfg.natsPort)
	}
	d.natsSrv = srv
	d.stops = append(d.stops, func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL(), nats.Name("hipersync-dev"))
	if err != nil {
		return fmt.Errorf("connect to the embedded NATS: %w", err)
	}
	d.nc = nc
	d.stops = append(d.stops, func() { _ = nc.Drain() })
	d.js, _ = jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return events.EnsureStreams(ctx, d.js, d.ns)
}

func (d *devRun) startSim() error {
	sim, err := hipersim.New(hipersim.Config{Keys: []string{hipersim.DemoKey}, Seed: hipersim.SeedDemo})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", d.cfg.simAddr)
	if err != nil {
		return fmt.Errorf("listen for hiper-sim on %s (use --sim-addr): %w", d.cfg.simAddr, err)
	}
	d.simSrv = &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = d.simSrv.Serve(lis) }()
	d.stops = append(d.stops, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.simSrv.Shutdown(ctx)
	})
	return nil
}

func (d *devRun) hiperURL() string { return "http://" + d.cfg.simAddr + hipersim.APIPrefix }

func (d *devRun) startBroker(ctx context.Context) error {
	var rdb redis.UniversalClient
	if d.cfg.redisURL != "" {
		opts, err := redis.ParseURL(d.cfg.redisURL)
		if err != nil {
			return fmt.Errorf("REDIS_URL: %w", err)
		}
		c := redis.NewClient(opts)
		rdb = c
		d.stops = append(d.stops, func() { _ = c.Close() })
	}
	srv, b, err := broker.Start(ctx, broker.Deps{
		NATS: d.nc, Redis: rdb, Namespace: d.ns, HiperBaseURL: d.hiperURL(),
		MasterKey: d.cfg.masterKey, Health: d.health, Log: d.log.With("component", "token-broker"),
	})
	if err != nil {
		return fmt.Errorf("start token-broker: %w", err)
	}
	lis, err := net.Listen("tcp", d.cfg.brokerAddr)
	if err != nil {
		return fmt.Errorf("listen for token-broker on %s (use --broker-addr): %w", d.cfg.brokerAddr, err)
	}
	d.grpcSrv = srv
	go func() { _ = srv.Serve(lis) }()
	bctx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- b.Run(bctx) }()
	d.stops = append(d.stops, func() { srv.GracefulStop(); cancel(); <-ran })
	return nil
}

// connectDemo connects the demo store to hiper-sim's demo account, as an
// operator would with `hipersync tenant connect`.
func (d *devRun) connectDemo(ctx context.Context) error {
	c, err := brokerclient.Dial(d.cfg.brokerAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Tenants.ConnectTenant(ctx, &brokerv1.ConnectTenantRequest{TenantId: devTenant, SecurityKey: hipersim.DemoKey}); err != nil {
		return fmt.Errorf("connect the demo store: %w", brokerclient.FromStatus(err))
	}
	return nil
}

func (d *devRun) stop() {
	for i := len(d.stops) - 1; i >= 0; i-- {
		d.stops[i]()
	}
}

func (d *devRun) printGuide(w io.Writer, took time.Duration, asJSON bool) {
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(d.cfg.natsPort)
	tokens := "in memory (set REDIS_URL to use Redis)"
	if d.cfg.redisURL != "" {
		tokens = "in Redis at " + d.cfg.redisURL
	}
	if asJSON {
		_ = writeJSON(w, map[string]any{
			"ready_seconds": took.Seconds(), "nats": natsURL, "data": d.cfg.dataDir,
			"hiper_sim": d.hiperURL(), "hiper_sim_control": "http://" + d.cfg.simAddr + "/_sim",
			"token_broker": d.cfg.brokerAddr, "health": "http://" + d.cfg.httpAddr, "tenant": devTenant,
		})
		return
	}
	fmt.Fprintf(w, `hipersync dev is running (ready in %.1fs)

  NATS with JetStream  %s   (data in %s)
  hiper-sim            %s   control: http://%s/_sim   demo catalog, key %s…
  token-broker         %s (gRPC), tokens %s
  health and metrics   http://%s/readyz  http://%s/metrics
  demo store           tenant %q, connected to hiper-sim's demo account

In another terminal:
  export NATS_URL=%s TOKEN_BROKER_ADDR=%s
  ./bin/hipersync tenant show %s
  ./bin/hipersync events tail --follow
  ./bin/hipersync dlq list

Ctrl-C stops everything.
`, took.Seconds(), natsURL, d.cfg.dataDir, d.hiperURL(), d.cfg.simAddr, hipersim.DemoKey[:8], d.cfg.brokerAddr, tokens,
		d.cfg.httpAddr, d.cfg.httpAddr, devTenant, natsURL, d.cfg.brokerAddr, devTenant)
}

package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
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
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/hipersync/hipersync/cmd/hipersync/devnats"
	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/natsauth"
	"github.com/hipersync/hipersync/pkg/natsconn"
	"github.com/hipersync/hipersync/pkg/pace"
	"github.com/hipersync/hipersync/pkg/poller"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/services/catalog-poller/catalogsync"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/console"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
	"github.com/hipersync/hipersync/services/order-forwarder/forwarder"
	"github.com/hipersync/hipersync/services/stock-poller/stocksync"
	"github.com/hipersync/hipersync/services/token-broker/broker"
)

const devTenant = "demo"

// devConfig is where the dev run puts each part.
type devConfig struct {
	dataDir     string
	natsPort    int
	simAddr     string
	brokerAddr  string
	httpAddr    string
	consoleAddr string
	redisURL    string
	masterKey   []byte
}

// devRun is the whole system in one process: the same code paths as the
// separate binaries, wired to an embedded NATS and an in-process hiper-sim.
type devRun struct {
	cfg     devConfig
	log     *slog.Logger
	natsSrv *natsserver.Server
	op      *natsauth.Operator
	nc      *nats.Conn
	js      jetstream.JetStream
	ns      events.Namespace
	simSrv  *http.Server
	grpcSrv *grpc.Server
	health  *telemetry.Health
	// loginURL logs a browser into the console once; apiKey is an
	// operator's key for the admin API (HIPERSYNC_TOKEN).
	loginURL string
	apiKey   string
	// stops run in reverse order of starting.
	stops []func()
}

func (a *app) devCmd() *cobra.Command {
	c := &cobra.Command{Use: "dev", Short: "the whole system on this machine, with the console (what `make run` runs)",
		Long: `the whole system on this machine (what ` + "`make run`" + ` runs): an embedded NATS, hiper-sim,
token-broker, the services, and the web console with the admin API at --console-addr.
With --json it prints where each part listens as JSON.`,
		Args: noArgs("dev")}
	cfg := devConfig{}
	fs := c.Flags()
	fs.StringVar(&cfg.dataDir, "data", ".data/dev", "folder for NATS's JetStream data and the dev master key")
	fs.IntVar(&cfg.natsPort, "nats-port", 4223, "port of the embedded NATS (not 4222, to leave a NATS already there alone)")
	fs.StringVar(&cfg.simAddr, "sim-addr", "127.0.0.1:8089", "hiper-sim's address")
	fs.StringVar(&cfg.brokerAddr, "broker-addr", "127.0.0.1:9091", "token-broker's gRPC address")
	fs.StringVar(&cfg.httpAddr, "http-addr", "127.0.0.1:8090", "/healthz, /readyz and /metrics of the dev run")
	fs.StringVar(&cfg.consoleAddr, "console-addr", "127.0.0.1:8088", "the web console and the admin API")
	c.RunE = func(*cobra.Command, []string) error { return runDev(a.ctx, a.e, cfg, a.asJSON) }
	return c
}

func runDev(ctx context.Context, e Env, cfg devConfig, asJSON bool) error {
	cfg.redisURL = e.Getenv("REDIS_URL")
	began := time.Now()
	d := &devRun{cfg: cfg, log: telemetry.NewLogger("hipersync-dev", io.Discard, slog.LevelInfo), health: telemetry.NewHealth()}
	if e.Getenv("LOG_LEVEL") != "" {
		l := config.NewLoader(e.Getenv)
		level := l.LogLevel()
		if err := l.Err(); err != nil {
			return err
		}
		d.log = telemetry.NewLogger("hipersync-dev", e.Stderr, level)
	}
	defer d.stop()
	if err := d.start(ctx, e); err != nil {
		return err
	}
	d.printGuide(e.Stdout, time.Since(began), asJSON)
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
	if err := d.connectDemo(ctx); err != nil {
		return err
	}
	if err := d.startServices(ctx, e); err != nil {
		return err
	}
	if err := d.startConsole(ctx, e); err != nil {
		return err
	}
	waitHTTP, err := d.health.Serve(ctx, d.cfg.httpAddr, d.log)
	if err != nil {
		return err
	}
	d.stops = append(d.stops, func() { _ = waitHTTP() })
	return nil
}

// startServices starts the services that follow tenants and events, each as
// its binary would (the same Start functions), with its own health and
// metrics included in the dev run's.
func (d *devRun) startServices(ctx context.Context, e Env) error {
	format, err := events.ParseFormat(e.Getenv("EVENTS_FORMAT"))
	if err != nil {
		return fmt.Errorf("EVENTS_FORMAT: %w", err)
	}
	tokens, err := brokerclient.Dial(d.cfg.brokerAddr)
	if err != nil {
		return err
	}
	d.stops = append(d.stops, func() { _ = tokens.Close() })
	dir, err := events.WatchTenants(ctx, d.js, d.ns, d.log)
	if err != nil {
		return err
	}

	// Run each service until the dev run stops, then wait for it: the
	// services stop before token-broker and NATS do.
	sctx, cancel := context.WithCancel(context.Background())
	var running []chan error
	d.stops = append(d.stops, func() {
		cancel()
		for _, r := range running {
			<-r
		}
	})
	run := func(name string, h *telemetry.Health, f func(context.Context) error) {
		d.health.Include(name, h)
		r := make(chan error, 1)
		running = append(running, r)
		go func() {
			err := f(sctx)
			if err != nil && sctx.Err() == nil {
				d.log.Error("service stopped", "service", name, "err", err)
			}
			r <- err
		}()
	}

	// The services share one token cache, as a process does
	// (service.Process.Tokens).
	cache := brokerclient.NewCache(tokens, nil)
	// The order-forwarder and the invoice-watcher share the connection and
	// the namespace; each has its own health and log.
	deps := func(name string, h *telemetry.Health) service.Deps {
		return service.Deps{
			NATS: d.nc, Namespace: d.ns, Tokens: cache, HiperBaseURL: d.hiperURL(), Format: format,
			Health: h, Log: d.log.With("service", name),
		}
	}
	fh := telemetry.NewHealth()
	fwd, err := forwarder.Start(ctx, forwarder.Deps{Deps: deps("order-forwarder", fh)})
	if err != nil {
		return fmt.Errorf("start order-forwarder: %w", err)
	}
	run("order-forwarder", fh, fwd.Run)

	wh := telemetry.NewHealth()
	w, err := watcher.Start(ctx, watcher.Deps{
		Deps: deps("invoice-watcher", wh),
		// The demo polls young orders every 2s, not 30s: hiper-sim has no
		// rate to respect and a newcomer should see the invoice come back.
		Config: watcher.Config{Schedule: order.Schedule{Min: 2 * time.Second, Max: 30 * time.Second}},
	})
	if err != nil {
		return fmt.Errorf("start invoice-watcher: %w", err)
	}
	run("invoice-watcher", wh, w.Run)

	pacer := pace.New(schedule.DefaultTenantRate, schedule.DefaultTenantBurst, nil)
	for _, p := range []struct {
		name  string
		start poller.StartFunc
	}{{"catalog-poller", catalogsync.Start}, {"stock-poller", stocksync.Start}} {
		h := telemetry.NewHealth()
		sched, err := p.start(ctx, poller.Deps{
			NATS: d.nc, Namespace: d.ns, Directory: dir, Tokens: cache.Source, HiperBaseURL: d.hiperURL(),
			Format: format, Pacer: pacer, Health: h, Log: d.log.With("service", p.name),
		})
		if err != nil {
			return fmt.Errorf("start %s: %w", p.name, err)
		}
		run(p.name, h, sched.Run)
	}
	return nil
}

// startConsole serves the web console and the admin API. Its only ways
// in are the one-time login link the guide prints and an operator API key
// made for this run.
func (d *devRun) startConsole(ctx context.Context, e Env) error {
	format, err := events.ParseFormat(e.Getenv("EVENTS_FORMAT"))
	if err != nil {
		return fmt.Errorf("EVENTS_FORMAT: %w", err)
	}
	key, line, err := auth.NewAPIKey("operator", "dev-operator")
	if err != nil {
		return err
	}
	a, err := auth.New(ctx, auth.Config{APIKeys: line, LoginLinksOnly: true})
	if err != nil {
		return err
	}
	tenants, err := brokerclient.Dial(d.cfg.brokerAddr)
	if err != nil {
		return err
	}
	d.stops = append(d.stops, func() { _ = tenants.Close() })
	// The console mints and revokes the stores' NATS credentials with the
	// dev run's own operator, as the guide's HIPERSYNC_API export expects.
	c, err := console.New(ctx, console.Deps{JS: d.js, NS: d.ns, Tenants: tenants.Tenants, Format: format, Auth: a,
		Credentials: d.op.Issuer(d.natsSrv.ClientURL()), Log: d.log.With("service", "console")})
	if err != nil {
		return fmt.Errorf("start the console: %w", err)
	}
	lis, err := console.Listen(d.cfg.consoleAddr)
	if err != nil {
		return fmt.Errorf("%w (use --console-addr)", err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	wait := console.Serve(cctx, lis, c.Handler, d.log.With("service", "console"))
	d.stops = append(d.stops, func() { cancel(); _ = wait() })
	d.apiKey = key
	tok := a.NewLoginLink(auth.Principal{Subject: "dev-operator", Role: adminv1.Role_ROLE_OPERATOR}, 24*time.Hour)
	d.loginURL = "http://" + d.cfg.consoleAddr + "/login/link?token=" + tok
	return nil
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

// startNATS starts the embedded NATS in operator mode, as production runs
// it: the services connect with their account's credentials, and a store
// only with the credentials `hipersync tenant credentials` mints.
func (d *devRun) startNATS() error {
	op, err := natsauth.LoadOperator(filepath.Join(d.cfg.dataDir, "nats-auth"), d.ns)
	if err != nil {
		return fmt.Errorf("set up the embedded NATS's operator: %w", err)
	}
	d.op = op
	srv, err := devnats.Start(op, "hipersync-dev", "127.0.0.1", d.cfg.natsPort, filepath.Join(d.cfg.dataDir, "nats"))
	if err != nil {
		return fmt.Errorf("the embedded NATS: %w (use --nats-port)", err)
	}
	d.natsSrv = srv
	d.stops = append(d.stops, func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := natsconn.Connect("hipersync-dev", config.NATS{URL: srv.ClientURL(), Creds: op.Path(natsauth.ServicesCredsFile)}, d.log)
	if err != nil {
		return err
	}
	d.nc = nc
	d.stops = append(d.stops, func() {
		if err := natsconn.Drain(nc, service.DrainTimeout); err != nil {
			d.log.Warn("stop NATS", "err", err)
		}
	})
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
	if err := writeDemoOrder(filepath.Join(d.cfg.dataDir, "demo-order.json"), sim.Products(hipersim.DemoKey)); err != nil {
		return err
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
	bh := telemetry.NewHealth()
	srv, b, err := broker.Start(ctx, broker.Deps{
		NATS: d.nc, Redis: rdb, Namespace: d.ns, HiperBaseURL: d.hiperURL(),
		MasterKey: d.cfg.masterKey, Health: bh, Log: d.log.With("service", "token-broker"),
		// Plaintext and reflection: a laptop's dev run (the guide says so).
		Reflection: true,
	})
	if err != nil {
		return fmt.Errorf("start token-broker: %w", err)
	}
	lis, err := net.Listen("tcp", d.cfg.brokerAddr)
	if err != nil {
		return fmt.Errorf("listen for token-broker on %s (use --broker-addr): %w", d.cfg.brokerAddr, err)
	}
	d.health.Include("token-broker", bh)
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

// devExports are the variables the CLI needs against the dev run, in the
// order the guide prints them.
func (d *devRun) devExports() [][2]string {
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	return [][2]string{
		{"NATS_URL", "nats://127.0.0.1:" + strconv.Itoa(d.cfg.natsPort)},
		{"NATS_CREDS", abs(d.op.Path(natsauth.ServicesCredsFile))},
		{"TOKEN_BROKER_ADDR", d.cfg.brokerAddr},
		{"HIPERSYNC_API", "http://" + d.cfg.consoleAddr},
		{"HIPERSYNC_TOKEN", d.apiKey},
		{natsauth.SigningKeyEnv, abs(d.op.Path(natsauth.StoreSigningFile))},
		{natsauth.OperatorKeyEnv, abs(d.op.Path(natsauth.OperatorKeyFile))},
		{natsauth.SystemCredsEnv, abs(d.op.Path(natsauth.SystemCredsFile))},
	}
}

func (d *devRun) printGuide(w io.Writer, took time.Duration, asJSON bool) {
	exports := d.devExports()
	natsURL := exports[0][1]
	tokens := "in memory (set REDIS_URL to use Redis)"
	if d.cfg.redisURL != "" {
		tokens = "in Redis at " + d.cfg.redisURL
	}
	if asJSON {
		env := map[string]string{}
		for _, kv := range exports {
			env[kv[0]] = kv[1]
		}
		_ = writeJSON(w, map[string]any{
			"ready_seconds": took.Seconds(), "nats": natsURL, "data": d.cfg.dataDir,
			"hiper_sim": d.hiperURL(), "hiper_sim_control": "http://" + d.cfg.simAddr + "/_sim",
			"token_broker": d.cfg.brokerAddr, "health": "http://" + d.cfg.httpAddr, "tenant": devTenant,
			"console": "http://" + d.cfg.consoleAddr, "login_url": d.loginURL, "env": env,
		})
		return
	}
	var export strings.Builder
	for _, kv := range exports {
		fmt.Fprintf(&export, "  export %s=%s\n", kv[0], kv[1])
	}
	order := filepath.Join(d.cfg.dataDir, "demo-order.json")
	fmt.Fprintf(w, `hipersync dev is running (ready in %.1fs)

  NATS with JetStream  %s   (operator mode; data in %s)
  hiper-sim            %s   control: http://%s/_sim   demo catalog, key %s…
  token-broker         %s (gRPC, no TLS: dev only), tokens %s
  health and metrics   http://%s/readyz  http://%s/metrics
  demo store           tenant %q, connected to hiper-sim's demo account
  web console          http://%s   (admin API on the same address)

Open the console (a one-time login link):
  %s

In another terminal:
%s  ./bin/hipersync tenant show %s
  ./bin/hipersync events tail --follow                 # catalog and stock arrive first
  ./bin/hipersync tenant credentials %s --out %s.creds   # the store's own NATS login
  NATS_CREDS=%s.creds NATS_INBOX_PREFIX=%s \
    ./bin/hipersync publish store.%s.order.approved --file %s
  ./bin/hipersync orders list %s                      # accepted, with its Hiper id
  ./bin/hipersync status
  ./bin/hipersync dlq list
(change orderId in the file to send another order; a repeat is ignored)

Ctrl-C stops everything.
`, took.Seconds(), natsURL, d.cfg.dataDir, d.hiperURL(), d.cfg.simAddr, hipersim.DemoKey[:8], d.cfg.brokerAddr, tokens,
		d.cfg.httpAddr, d.cfg.httpAddr, devTenant, d.cfg.consoleAddr, d.loginURL, export.String(), devTenant,
		devTenant, devTenant, devTenant, natsauth.InboxPrefix(d.ns, devTenant), devTenant, order, devTenant)
}

// writeDemoOrder writes an approved order a store could publish for the demo
// catalog: one variation named by its Hiper id, one product by its barcode,
// paid by Pix, amounts that add up.
func writeDemoOrder(path string, products []hiper.Product) error {
	var byID, byEAN *hiper.Product
	for i := range products {
		p := &products[i]
		if !bool(p.Active) || bool(p.Removed) || p.IsParent() {
			continue
		}
		switch {
		case byID == nil && p.IsVariation():
			byID = p
		case byEAN == nil && !p.IsVariation() && p.Barcode != "" && p.Category != "":
			byEAN = p
		}
	}
	if byID == nil || byEAN == nil {
		return errors.New("write the demo order: the demo catalog lacks a variation or a product with a barcode")
	}
	total := byID.Price.Add(byEAN.Price.Mul(hiper.DecimalFromInt(2).Decimal))
	order := map[string]any{
		"orderId": "1001", "approvedAt": time.Now().UTC().Format(time.RFC3339), "currency": "BRL",
		"customer": map[string]string{"document": "52998224725", "email": "ana@example.com", "name": "Ana Souza"},
		"billingAddress": map[string]string{"street": "Rua Principal", "number": "01", "district": "Centro",
			"postalCode": "88351001", "ibgeCityCode": "4202909"},
		"shippingAddress": map[string]string{"street": "Rua Principal", "number": "22", "complement": "Sala 2",
			"district": "Centro", "postalCode": "88351001", "ibgeCityCode": "4202909"},
		"items": []map[string]string{
			{"productId": byID.ID, "quantity": "1", "unitPrice": byID.Price.StringFixed(2)},
			{"ean": byEAN.Barcode, "quantity": "2", "unitPrice": byEAN.Price.StringFixed(2)},
		},
		"payments":       []map[string]any{{"method": "PIX", "installments": 1, "amount": total.StringFixed(2)}},
		"shippingAmount": "0.00",
	}
	b, err := json.MarshalIndent(order, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the demo order: %w", err)
	}
	return nil
}

package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/hipersim/simtest"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// cluster is n token-brokers sharing one NATS namespace, one Redis prefix
// and one hiper-sim, as replicas do in production.
type cluster struct {
	t      testing.TB
	sim    *simtest.Server
	key    string // the hiper-sim account's security key
	ns     events.Namespace
	js     jetstream.JetStream
	rdb    *redis.Client
	prefix string
	// answered counts the token answers let through to the brokers after
	// clusterOpts.answerDelay.
	answered atomic.Int64
	// issued is every token hiper-sim issued, in order.
	issuedMu sync.Mutex
	issued   []hipersim.IssuedToken
	master   []byte
	brokers  []*Broker
	clients  []*brokerclient.Client
}

type clusterOpts struct {
	replicas int
	tokenTTL time.Duration
	redis    redis.UniversalClient // overrides the shared Redis client
	// answerDelay holds back hiper-sim's answers on their way to the
	// brokers, after the sim has issued a token (its own LatencyMs waits
	// before): a slow network back from Hiper.
	answerDelay time.Duration
}

func newCluster(t testing.TB, o clusterOpts) *cluster {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	key := testkit.RandomHex(32)
	c := &cluster{t: t, key: key, ns: events.Namespace{Prefix: testkit.Prefix(t)}, master: make([]byte, 32)}
	_, _ = rand.Read(c.master)
	c.sim = simtest.Start(t, hipersim.Config{Keys: []string{key}, Seed: "empty", TokenTTL: o.tokenTTL,
		OnToken: func(it hipersim.IssuedToken) {
			c.issuedMu.Lock()
			defer c.issuedMu.Unlock()
			c.issued = append(c.issued, it)
		}})

	nc, err := nats.Connect(testkit.NATSURL())
	if err != nil {
		t.Fatalf("connect to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	c.js, _ = jetstream.New(nc)
	t.Cleanup(func() { _ = c.js.DeleteKeyValue(context.Background(), c.ns.Bucket(tenant.Bucket)) })

	opts, err := redis.ParseURL(testkit.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	c.rdb = redis.NewClient(opts)
	t.Cleanup(func() { _ = c.rdb.Close() })
	c.prefix = "hipersync:" + c.ns.Prefix + ":"
	t.Cleanup(func() { c.deleteRedisKeys() })

	hiperURL := c.sim.URL
	if o.answerDelay > 0 {
		target, err := url.Parse(c.sim.URL)
		if err != nil {
			t.Fatal(err)
		}
		p := httputil.NewSingleHostReverseProxy(target)
		p.ModifyResponse = func(r *http.Response) error {
			select {
			case <-time.After(o.answerDelay):
				if r.StatusCode == http.StatusOK {
					c.answered.Add(1)
				}
				return nil
			case <-r.Request.Context().Done():
				return r.Request.Context().Err()
			}
		}
		slow := httptest.NewServer(p)
		t.Cleanup(slow.Close)
		hiperURL = slow.URL
	}

	var rdb redis.UniversalClient = c.rdb
	if o.redis != nil {
		rdb = o.redis
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := 0; i < o.replicas; i++ {
		srv, b, err := Start(ctx, Deps{
			NATS: nc, Redis: rdb, Namespace: c.ns, HiperBaseURL: hiperURL, MasterKey: c.master,
			Health: telemetry.NewHealth(), Log: log,
			Cache: TokenCacheConfig{SweepEvery: 50 * time.Millisecond, LockTTL: 2 * time.Second},
		})
		if err != nil {
			t.Fatalf("start broker %d: %v", i, err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		go func() { _ = b.Run(ctx) }()
		cl, err := brokerclient.Dial(lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		c.brokers = append(c.brokers, b)
		c.clients = append(c.clients, cl)
	}
	return c
}

func (c *cluster) deleteRedisKeys() {
	ctx := context.Background()
	iter := c.rdb.Scan(ctx, 0, c.prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		c.rdb.Del(ctx, iter.Val())
	}
}

// addColdTenant registers an active tenant with the account's key without
// asking Hiper for a token, so nothing is cached anywhere.
func (c *cluster) addColdTenant(id string) {
	c.t.Helper()
	sealer, _ := tenant.NewSealer(c.master)
	sealed, err := sealer.Seal(id, c.key)
	if err != nil {
		c.t.Fatal(err)
	}
	_, err = c.brokers[0].Registry.update(context.Background(), id, true, func(rec *brokerv1.TenantRecord) error {
		rec.SealedKey, rec.KeyVersion = sealed, tenant.KeyVersion
		rec.Tenant.State = brokerv1.TenantState_TENANT_STATE_ACTIVE
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) tokensIssued() int { return c.sim.Sim.Stats().TokensIssued[c.key] }

// issuedTokens is every token hiper-sim issued so far, in order.
func (c *cluster) issuedTokens() []hipersim.IssuedToken {
	c.issuedMu.Lock()
	defer c.issuedMu.Unlock()
	return slices.Clone(c.issued)
}

// tokensReceived is how many tokens reached the brokers: with answers
// delayed, one issued may still be on its way.
func (c *cluster) tokensReceived(delayed bool) int {
	if delayed {
		return int(c.answered.Load())
	}
	return c.tokensIssued()
}

func TestColdTenantGetsOneTokenAcrossReplicas(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{replicas: 3})
	c.addColdTenant("acme")

	var wg sync.WaitGroup
	var failures atomic.Int32
	tokens := sync.Map{}
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tok, err := c.clients[i%3].Token(context.Background(), "acme")
			if err != nil {
				failures.Add(1)
				t.Errorf("GetToken: %v", err)
				return
			}
			tokens.Store(tok.Value, true)
		}(i)
	}
	testkit.Wait(t, &wg, time.Minute, "the callers")
	if failures.Load() > 0 {
		t.FailNow()
	}
	if n := c.tokensIssued(); n != 1 {
		t.Fatalf("hiper-sim issued %d tokens for 1,000 concurrent calls on 3 replicas, want 1", n)
	}
	distinct := 0
	tokens.Range(func(any, any) bool { distinct++; return true })
	if distinct != 1 {
		t.Fatalf("callers saw %d different tokens", distinct)
	}
}

// TestSlowHiperStillOneToken: a Hiper answering later than the refresh
// lock's TTL does not let another replica take the lock and ask for a
// second token: the holder renews it while it waits.
func TestSlowHiperStillOneToken(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{replicas: 2, answerDelay: 3 * time.Second}) // the lock's TTL is 2 s
	c.addColdTenant("acme")
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := c.clients[i%2].Token(ctx, "acme"); err != nil {
				t.Errorf("GetToken: %v", err)
			}
		}(i)
	}
	testkit.Wait(t, &wg, time.Minute, "the 20 callers")
	if n := c.tokensIssued(); n != 1 {
		t.Fatalf("hiper-sim issued %d tokens while one replica waited 3 s for its answer, want 1", n)
	}
}

// TestTokensRefreshOncePerExpiryAndNeverExpired calls three replicas
// steadily across several expiries of short-lived tokens, with Hiper
// answering at once and with its answers a second on the way back. Every
// token must be handed out at least its margin before it expires, judged
// from the moment the call was made: hiper-sim's tokens expire on a whole
// second, ttl after issue, so a token issued after a call made at start
// expires more than ttl - 1 s after start, and its margin, a fifth of
// that, is over (ttl - 1 s) / 5.
// This holds however long the call then takes, so a stalled test process
// cannot fail it; judged from the moment the answer arrived instead, any
// stall longer than the margin would look like an expired token.
func TestTokensRefreshOncePerExpiryAndNeverExpired(t *testing.T) {
	t.Parallel()
	// A second of delay is a third of a 3 s token's life: under a loaded
	// machine's stalls, what is left on arrival can fall short of the
	// margin and the token is refused (too soon to use), so that case has
	// 4 s tokens.
	for _, tc := range []struct{ ttl, delay time.Duration }{{3 * time.Second, 0}, {4 * time.Second, time.Second}} {
		t.Run(fmt.Sprintf("ttl=%s,answer-delay=%s", tc.ttl, tc.delay), func(t *testing.T) {
			t.Parallel()
			testTokensRefresh(t, tc.ttl, tc.delay)
		})
	}
}

func testTokensRefresh(t *testing.T, ttl, answerDelay time.Duration) {
	minMargin := (ttl - time.Second) / 5
	c := newCluster(t, clusterOpts{replicas: 3, tokenTTL: ttl, answerDelay: answerDelay})
	c.addColdTenant("acme")

	var mu sync.Mutex
	seen := map[string]time.Time{} // token → its expiry
	// Callers go on after end until every token the brokers received was
	// handed out: a refresh under way at end brings one more, which they
	// then get. Read in this order, the two counts can only be equal when
	// all were; the token of a duplicated refresh is never handed out, so
	// its count stays short until giveUp.
	var handedAll atomic.Bool
	allHanded := func() bool {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == c.tokensReceived(answerDelay > 0) {
			handedAll.Store(true)
		}
		return handedAll.Load()
	}
	end := time.Now().Add(3*ttl + ttl/2)
	giveUp := end.Add(2 * ttl)
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pace := time.NewTicker(5 * time.Millisecond) // callers at a steady rate
			defer pace.Stop()
			for now := time.Now(); now.Before(end) || now.Before(giveUp) && !allHanded(); now = time.Now() {
				<-pace.C
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				called := time.Now()
				tok, err := c.clients[i%3].Token(ctx, "acme")
				cancel()
				if err != nil {
					t.Errorf("GetToken: %v", err)
					return
				}
				if left := tok.ExpiresAt.Sub(called); left < minMargin {
					t.Errorf("handed a token that expires %s after the call was made (at %s, answered in %s); want at least %s",
						left, tok.ExpiresAt, time.Since(called), minMargin)
					return
				}
				mu.Lock()
				seen[tok.Value] = tok.ExpiresAt
				mu.Unlock()
			}
		}(i)
	}
	testkit.Wait(t, &wg, time.Minute, "the callers")
	if t.Failed() {
		return // a caller gave up early: the counts say nothing
	}

	issued := c.tokensReceived(answerDelay > 0)
	if issued < 3 {
		t.Fatalf("only %d tokens issued over %s with a %s lifetime: tokens were not refreshed", issued, 3*ttl, ttl)
	}
	// A double refresh shows up as a token issued that no caller was handed
	// (the loser's) or as two tokens of one generation (same expiry second).
	if !handedAll.Load() {
		t.Fatalf("hiper-sim issued %d tokens but callers were handed %d: some refresh was duplicated", issued, len(seen))
	}
	bySecond := map[int64]int{}
	for _, exp := range seen {
		bySecond[exp.Unix()]++
		if bySecond[exp.Unix()] > 1 {
			t.Fatalf("two tokens expire at %s: one expiry was refreshed twice", exp)
		}
	}
}

func TestInvalidateBurstCausesOneRefresh(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{replicas: 3})
	c.addColdTenant("acme")
	stale, err := c.clients[0].Token(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	// Every replica has the stale token in memory.
	for _, cl := range c.clients[1:] {
		if tok, err := cl.Token(context.Background(), "acme"); err != nil || tok.Value != stale.Value {
			t.Fatalf("replica token: %v %v", tok.Value == stale.Value, err)
		}
	}
	before := c.tokensIssued()

	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := c.clients[i%3].Invalidate(context.Background(), "acme", stale.Value); err != nil {
				t.Errorf("InvalidateToken: %v", err)
			}
		}(i)
	}
	testkit.Wait(t, &wg, time.Minute, "the callers")
	for i, cl := range c.clients {
		testkit.WaitFor(t, 20*time.Second, fmt.Sprintf("replica %d to hand out a new token", i), func() bool {
			tok, err := cl.Token(context.Background(), "acme")
			return err == nil && tok.Value != stale.Value
		})
	}
	if n := c.tokensIssued() - before; n != 1 {
		t.Fatalf("200 invalidations of one stale token caused %d refreshes, want 1", n)
	}
	// A stale token reported again changes nothing.
	if err := c.clients[0].Invalidate(context.Background(), "acme", stale.Value); err != nil {
		t.Fatal(err)
	}
	if n := c.tokensIssued() - before; n != 1 {
		t.Fatalf("a late invalidation of an old token caused a refresh (%d)", n)
	}
}

func TestRedisFlushedTokensStillServed(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{replicas: 2})
	c.addColdTenant("acme")
	if _, err := c.clients[0].Token(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	c.deleteRedisKeys() // this test's share of a FLUSHALL
	for i := 0; i < 50; i++ {
		if _, err := c.clients[i%2].Token(context.Background(), "acme"); err != nil {
			t.Fatalf("after the flush: %v", err)
		}
	}
}

// proxy forwards TCP to Redis until cut, to stop "Redis" for one test only.
type proxy struct {
	lis   net.Listener
	mu    sync.Mutex
	conns []net.Conn
	down  atomic.Bool
}

func startProxy(t *testing.T, target string) *proxy {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{lis: lis}
	t.Cleanup(func() { _ = lis.Close(); p.cut() })
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			if p.down.Load() {
				_ = in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func TestRedisStoppedTokensStillServed(t *testing.T) {
	t.Parallel()
	opts, _ := redis.ParseURL(testkit.RedisURL())
	p := startProxy(t, opts.Addr)
	viaProxy := redis.NewClient(&redis.Options{Addr: p.lis.Addr().String(), DB: opts.DB, MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = viaProxy.Close() })
	c := newCluster(t, clusterOpts{replicas: 2, redis: viaProxy})
	c.addColdTenant("acme")
	c.addColdTenant("beta")
	if _, err := c.clients[0].Token(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}

	p.cut()
	for i := 0; i < 20; i++ {
		for _, id := range []string{"acme", "beta"} { // beta is cold: it must come from Hiper
			tok, err := c.clients[i%2].Token(context.Background(), id)
			if err != nil || tok.Value == "" {
				t.Fatalf("with Redis down, %s: %v", id, err)
			}
		}
	}
	if err := c.brokers[0].Tokens.RedisErr(); err == nil && c.brokers[1].Tokens.RedisErr() == nil {
		t.Fatal("no replica noticed that Redis is down (readiness would not report it)")
	}
}

func TestTenantErrorsAreDistinct(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{replicas: 1})
	ctx := context.Background()
	cl := c.clients[0]

	// A wrong key is refused and the tenant shows invalid_key.
	_, err := cl.Tenants.ConnectTenant(ctx, &brokerv1.ConnectTenantRequest{TenantId: "wrong", SecurityKey: testkit.RandomHex(32)})
	wrongKey := brokerclient.FromStatus(err)
	if !errors.Is(wrongKey, tenant.ErrInvalidKey) || codeOf(wrongKey) != codes.InvalidArgument || !strings.Contains(wrongKey.Error(), "refused") {
		t.Fatalf("wrong key: %v", wrongKey)
	}
	got, err := cl.Tenants.GetTenant(ctx, &brokerv1.GetTenantRequest{TenantId: "wrong"})
	if err != nil || got.GetTenant().GetState() != brokerv1.TenantState_TENANT_STATE_INVALID_KEY {
		t.Fatalf("tenant after a wrong key: %v %v", got, err)
	}
	_, err = cl.Token(ctx, "wrong")
	if !errors.Is(err, tenant.ErrKeyRefused) || codeOf(err) != codes.PermissionDenied {
		t.Fatalf("token for an invalid_key tenant: %v", err)
	}

	// Unknown tenant.
	_, unknown := cl.Token(ctx, "nobody")
	if !errors.Is(unknown, tenant.ErrUnknown) || codeOf(unknown) != codes.NotFound || !strings.Contains(unknown.Error(), "hipersync tenant connect") {
		t.Fatalf("unknown tenant: %v", unknown)
	}

	// Connected, then paused, then disconnected.
	if _, err := cl.Tenants.ConnectTenant(ctx, &brokerv1.ConnectTenantRequest{TenantId: "acme", SecurityKey: c.key}); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if _, err := cl.Token(ctx, "acme"); err != nil {
		t.Fatalf("token after connect: %v", err)
	}
	if n := c.tokensIssued(); n != 1 {
		t.Fatalf("connect and a first GetToken took %d tokens from Hiper, want 1 (the validation token is reused)", n)
	}
	if _, err := cl.Tenants.PauseTenant(ctx, &brokerv1.PauseTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	_, paused := cl.Token(ctx, "acme")
	if !errors.Is(paused, tenant.ErrPaused) || codeOf(paused) != codes.FailedPrecondition {
		t.Fatalf("paused: %v", paused)
	}
	if _, err := cl.Tenants.ResumeTenant(ctx, &brokerv1.ResumeTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Token(ctx, "acme"); err != nil {
		t.Fatalf("token after resume: %v", err)
	}
	if _, err := cl.Tenants.DisconnectTenant(ctx, &brokerv1.DisconnectTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	_, disconnected := cl.Token(ctx, "acme")
	if !errors.Is(disconnected, tenant.ErrNotConnected) || codeOf(disconnected) != codes.FailedPrecondition {
		t.Fatalf("disconnected: %v", disconnected)
	}
	if errors.Is(disconnected, tenant.ErrPaused) || errors.Is(paused, tenant.ErrNotConnected) {
		t.Fatal("paused and disconnected are not told apart")
	}
	rec, _, err := c.brokers[0].Registry.read(ctx, "acme")
	if err != nil || len(rec.GetSealedKey()) != 0 {
		t.Fatalf("the key survived a disconnect: %v", err)
	}

	// Malformed tenant id.
	_, bad := cl.Token(ctx, "Not A Tenant")
	if !errors.Is(bad, tenant.ErrInvalid) || codeOf(bad) != codes.InvalidArgument {
		t.Fatalf("malformed id: %v", bad)
	}
}

func codeOf(err error) codes.Code {
	var e *brokerclient.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return codes.Unknown
}

func TestStoredKeyIsSealed(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{replicas: 1})
	ctx := context.Background()
	if _, err := c.clients[0].Tenants.ConnectTenant(ctx, &brokerv1.ConnectTenantRequest{TenantId: "acme", SecurityKey: c.key}); err != nil {
		t.Fatal(err)
	}
	kv, err := c.js.KeyValue(ctx, c.ns.Bucket(tenant.Bucket))
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	raw := entry.Value()
	if strings.Contains(string(raw), c.key) || strings.Contains(strings.ToLower(hex.EncodeToString(raw)), c.key) {
		t.Fatal("the security key is readable in the bucket")
	}
	rec, err := tenant.DecodeRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	other := make([]byte, 32)
	_, _ = rand.Read(other)
	wrong, _ := tenant.NewSealer(other)
	if _, err := wrong.Open("acme", rec.GetSealedKey()); err == nil {
		t.Fatal("the key opened without the master key")
	}
	right, _ := tenant.NewSealer(c.master)
	if k, err := right.Open("acme", rec.GetSealedKey()); err != nil || k != c.key {
		t.Fatal("the master key does not open the stored key")
	}
	// No API returns it.
	got, _ := c.clients[0].Tenants.GetTenant(ctx, &brokerv1.GetTenantRequest{TenantId: "acme"})
	if strings.Contains(got.String(), c.key) {
		t.Fatal("GetTenant returned the key")
	}
}

// Tokens in Redis are sealed like the stored keys: Redis is often shared,
// and whoever reads it must not get a working Hiper token.
func TestTokenInRedisIsSealed(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{replicas: 2})
	c.addColdTenant("acme")
	ctx := context.Background()
	tok, err := c.clients[0].Token(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.rdb.Get(ctx, c.prefix+"token:acme").Result()
	if err != nil {
		t.Fatalf("the token is not in Redis: %v", err)
	}
	if strings.Contains(raw, tok.Value) {
		t.Fatalf("the token is readable in Redis: %q", raw)
	}
	// The other replica opens it (one Hiper call for both).
	if other, err := c.clients[1].Token(ctx, "acme"); err != nil || other.Value != tok.Value || c.tokensIssued() != 1 {
		t.Fatalf("second replica: %v, same %v, issued %d", err, other.Value == tok.Value, c.tokensIssued())
	}
	// An invalidation still finds it by its fingerprint.
	if err := c.clients[1].Invalidate(ctx, "acme", tok.Value); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.rdb.Exists(ctx, c.prefix+"token:acme").Result(); n == 1 {
		if v, _ := c.rdb.Get(ctx, c.prefix+"token:acme").Result(); v == raw {
			t.Fatal("the refused token is still in Redis")
		}
	}
}

func TestSettingsUpdateWithMaskAndValidation(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{replicas: 1})
	ctx := context.Background()
	cl := c.clients[0].Tenants
	_, err := cl.UpdateTenantSettings(ctx, &brokerv1.UpdateTenantSettingsRequest{
		TenantId: "acme",
		Settings: &brokerv1.TenantSettings{DefaultCategory: "Geral", UpdateImages: true, StockInterval: durationpb.New(30 * time.Second)},
	})
	if err != nil {
		t.Fatalf("settings before connect: %v", err)
	}
	resp, err := cl.UpdateTenantSettings(ctx, &brokerv1.UpdateTenantSettingsRequest{
		TenantId:   "acme",
		Settings:   &brokerv1.TenantSettings{DefaultBrand: "Sem marca", DefaultCategory: "ignored"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"default_brand"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := resp.GetTenant().GetSettings()
	if s.GetDefaultBrand() != "Sem marca" || s.GetDefaultCategory() != "Geral" || !s.GetUpdateImages() || s.GetStockInterval().AsDuration() != 30*time.Second {
		t.Fatalf("masked update: %v", s)
	}
	if resp.GetTenant().GetState() != brokerv1.TenantState_TENANT_STATE_NOT_CONNECTED {
		t.Fatalf("state: %v", resp.GetTenant().GetState())
	}
	_, err = cl.UpdateTenantSettings(ctx, &brokerv1.UpdateTenantSettingsRequest{
		TenantId: "acme", Settings: &brokerv1.TenantSettings{StockInterval: durationpb.New(time.Second)},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"stock_interval"}},
	})
	if e := brokerclient.FromStatus(err); !errors.Is(e, tenant.ErrInvalid) || !strings.Contains(e.Error(), "stock-interval") {
		t.Fatalf("a 1s stock interval: %v", e)
	}
	_, err = cl.UpdateTenantSettings(ctx, &brokerv1.UpdateTenantSettingsRequest{
		TenantId: "acme", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"colour"}},
	})
	if e := brokerclient.FromStatus(err); !errors.Is(e, tenant.ErrInvalid) {
		t.Fatalf("unknown setting: %v", e)
	}
	list, err := cl.ListTenants(ctx, &brokerv1.ListTenantsRequest{})
	if err != nil || len(list.GetTenants()) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
}

func TestMasterKeyRotation(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{replicas: 1})
	ctx := context.Background()
	c.addColdTenant("acme") // sealed under c.master
	nc, err := nats.Connect(testkit.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	newKey := make([]byte, 32)
	_, _ = rand.Read(newKey)
	start := func(master []byte, previous ...[]byte) (*Broker, error) {
		_, b, err := Start(ctx, Deps{NATS: nc, Redis: c.rdb, Namespace: c.ns, HiperBaseURL: c.sim.URL,
			MasterKey: master, PreviousMasterKeys: previous, Health: telemetry.NewHealth(),
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		return b, err
	}
	// With the new key alone the stored key does not open: a token needs it.
	c.deleteRedisKeys()
	b, err := start(newKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetToken(ctx, "acme"); err == nil {
		t.Fatal("a key sealed under the old master key opened with the new one alone")
	}
	// During the rotation both open it, and the start seals it again.
	if b, err = start(newKey, c.master); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetToken(ctx, "acme"); err != nil {
		t.Fatalf("token during the rotation: %v", err)
	}
	// After it, the old key is gone and the stored key opens with the new one.
	c.deleteRedisKeys()
	if b, err = start(newKey); err != nil {
		t.Fatal(err)
	}
	b.Tokens.forgetLocal("acme")
	if _, err := b.GetToken(ctx, "acme"); err != nil {
		t.Fatalf("token after the rotation: %v", err)
	}
	// A second pass changes nothing.
	if n, err := b.Registry.Reseal(ctx); err != nil || n != 0 {
		t.Fatalf("reseal again: %d %v", n, err)
	}
}

func TestGRPCHealthFollowsNATS(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{replicas: 1})
	nc, err := nats.Connect(testkit.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	r := startProbed(t, c, nc, c.rdb)
	testkit.WaitFor(t, 20*time.Second, "SERVING", func() bool { return r.grpc() == healthpb.HealthCheckResponse_SERVING })
	nc.Close() // this replica loses NATS
	testkit.WaitFor(t, 10*time.Second, "NOT_SERVING after NATS is gone", func() bool { return r.grpc() == healthpb.HealthCheckResponse_NOT_SERVING })
}

// A replica is not ready until Redis answered once (a wrong REDIS_URL stops
// a rollout); once it has, losing Redis only degrades it.
func TestReadinessWaitsForRedisThenOnlyDegrades(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{replicas: 1})
	opts, _ := redis.ParseURL(testkit.RedisURL())
	p := startProxy(t, opts.Addr)
	p.cut() // Redis unreachable from the start
	viaProxy := redis.NewClient(&redis.Options{Addr: p.lis.Addr().String(), DB: opts.DB, MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = viaProxy.Close() })
	nc, err := nats.Connect(testkit.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r := startProbed(t, c, nc, viaProxy)
	testkit.WaitFor(t, 20*time.Second, "NOT_SERVING and 503 while Redis never answered", func() bool {
		code, _ := r.readyz()
		return r.grpc() == healthpb.HealthCheckResponse_NOT_SERVING && code == http.StatusServiceUnavailable
	})

	p.down.Store(false) // Redis answers
	testkit.WaitFor(t, 10*time.Second, "SERVING and ready once Redis answered", func() bool {
		code, _ := r.readyz()
		return r.grpc() == healthpb.HealthCheckResponse_SERVING && code == http.StatusOK
	})

	p.cut() // and goes away again: degraded, still serving
	testkit.WaitFor(t, 10*time.Second, "/readyz degraded", func() bool {
		code, body := r.readyz()
		return code == http.StatusOK && strings.Contains(body, "degraded")
	})
	if st := r.grpc(); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health %s after Redis went away; want SERVING, degraded", st)
	}
}

// probed is a token-broker replica whose gRPC health and /readyz a test
// reads.
type probed struct {
	grpc   func() healthpb.HealthCheckResponse_ServingStatus
	health *telemetry.Health
}

func (p probed) readyz() (int, string) {
	rec := httptest.NewRecorder()
	p.health.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, rec.Body.String()
}

func startProbed(t *testing.T, c *cluster, nc *nats.Conn, rdb redis.UniversalClient) probed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := telemetry.NewHealth()
	srv, _, err := Start(ctx, Deps{NATS: nc, Redis: rdb, Namespace: c.ns, HiperBaseURL: c.sim.URL,
		MasterKey: c.master, Health: h, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	hc := healthpb.NewHealthClient(conn)
	return probed{health: h, grpc: func() healthpb.HealthCheckResponse_ServingStatus {
		r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "hipersync.broker.v1.TokenService"})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return r.GetStatus()
	}}
}

// TestStateReasonsAreCoded: why a tenant is in its state is what a merchant
// reads in the console: a stable code and Portuguese text, with Hiper's own
// words when Hiper refused the key, a key offered or the key it had.
func TestStateReasonsAreCoded(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{replicas: 1})
	ctx := context.Background()
	cl := c.clients[0]
	reason := func(id, state, code string, says ...string) {
		t.Helper()
		got, err := cl.Tenants.GetTenant(ctx, &brokerv1.GetTenantRequest{TenantId: id})
		if err != nil {
			t.Fatal(err)
		}
		tn := got.GetTenant()
		if tenant.StateName(tn.GetState()) != state || tn.GetStateReasonCode() != code {
			t.Fatalf("%s is %s (%q: %q), want %s (%q)", id, tenant.StateName(tn.GetState()), tn.GetStateReasonCode(), tn.GetStateReason(), state, code)
		}
		for _, s := range says {
			if !strings.Contains(tn.GetStateReason(), s) {
				t.Errorf("%s's reason %q does not say %q", id, tn.GetStateReason(), s)
			}
		}
	}
	const where = "Vendas > Loja virtual > Configurações"

	_, _ = cl.Tenants.ConnectTenant(ctx, &brokerv1.ConnectTenantRequest{TenantId: "wrong", SecurityKey: testkit.RandomHex(32)})
	reason("wrong", "invalid_key", tenant.ReasonKeyRefused, "O Hiper recusou a chave", "Chave de segurança inválida.", where)

	if _, err := cl.Tenants.ConnectTenant(ctx, &brokerv1.ConnectTenantRequest{TenantId: "acme", SecurityKey: c.key}); err != nil {
		t.Fatal(err)
	}
	reason("acme", "active", "")
	if _, err := cl.Tenants.PauseTenant(ctx, &brokerv1.PauseTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	reason("acme", "paused", tenant.ReasonPausedByOperator, "pausada")
	if _, err := cl.Tenants.ResumeTenant(ctx, &brokerv1.ResumeTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	reason("acme", "active", "")

	// The merchant changes the key in Hiper: the stored one stops working
	// when the next token is due.
	tok, err := cl.Token(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	c.sim.Sim.SetFaults(hipersim.Faults{ErrorRate: 1, ErrorStatus: http.StatusBadRequest, ExpireTokensNow: true,
		Endpoints: []string{hipersim.EndpointToken}})
	if err := cl.Invalidate(ctx, "acme", tok.Value); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Token(ctx, "acme"); !errors.Is(err, tenant.ErrKeyRefused) {
		t.Fatalf("token after the key was changed in Hiper: %v", err)
	}
	reason("acme", "invalid_key", tenant.ReasonStoredKeyRefused, "deixou de aceitar", where)
	c.sim.Sim.SetFaults(hipersim.Faults{})

	if _, err := cl.Tenants.DisconnectTenant(ctx, &brokerv1.DisconnectTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	reason("acme", "not_connected", tenant.ReasonDisconnectedByOperator, "desconectada", where)
}

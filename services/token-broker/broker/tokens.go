package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/renew"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Issuer exchanges a security key for a Hiper token; *hiper.Client is one.
type Issuer interface {
	Token(ctx context.Context, securityKey string) (hiper.Token, error)
}

// KeyLookup returns a tenant's security key, or why it may not have a token.
type KeyLookup func(ctx context.Context, tenantID string) (string, error)

// TokenCacheConfig tunes a TokenCache; zero values take the defaults.
type TokenCacheConfig struct {
	// Redis holds tokens shared by every replica and the refresh locks. Nil
	// keeps tokens in this process only (the dev run without REDIS_URL).
	Redis redis.UniversalClient
	// KeyPrefix namespaces Redis keys; default "hipersync:".
	KeyPrefix string
	// Sealer seals tokens before they go to Redis, as it seals the stored
	// security keys: Redis is often shared, and a token is as good as the
	// key for as long as it lives. Nil: a random key of this process (its
	// tokens are then of no use to other replicas).
	Sealer *tenant.Sealer
	// MaxMargin caps how long before expiry a token stops being handed out;
	// the margin is a fifth of the token's lifetime up to this. Default 5m.
	MaxMargin time.Duration
	// LockTTL is how long a tenant's refresh lock outlives a replica that
	// stopped renewing it (the holder renews it while its fetch runs), and
	// how long the others wait before looking again. Default 10s.
	LockTTL time.Duration
	// SweepEvery is how often tokens of recently used tenants are checked
	// for refresh ahead of expiry. Default 1s.
	SweepEvery time.Duration
	// FetchTimeout bounds one refresh, Hiper call included. Default 20s.
	FetchTimeout time.Duration
	// OnKeyRefused is called when Hiper refuses a tenant's key during a
	// refresh (a revoked key), so the registry can mark it.
	OnKeyRefused func(ctx context.Context, tenantID string, err error)
	Metrics      *Metrics
	Log          *slog.Logger
	Now          func() time.Time
}

// TokenCache hands out Hiper tokens from three layers: this process's memory,
// then Redis (shared by every replica), then Hiper. A tenant's token is
// fetched from Hiper once across all replicas: the replica holding the
// tenant's Redis lock fetches, the others wait to be told by Redis pub/sub.
// Tokens are refreshed ahead of expiry, so in steady state no caller waits
// for Hiper. If Redis is unreachable tokens are still served, with one fetch
// per tenant per replica.
type TokenCache struct {
	cfg    TokenCacheConfig
	issuer Issuer
	keys   KeyLookup

	mu         sync.RWMutex
	local      map[string]*entry
	flights    map[string]*flight
	refreshing map[string]bool
	waiters    map[string][]chan struct{}

	redisErr atomic.Pointer[error]
}

type entry struct {
	tok    hiper.Token
	margin time.Duration
	// lastUsed (unix nanoseconds) is stamped under the read lock by every
	// hit, so it is atomic.
	lastUsed atomic.Int64
}

func newEntry(tok hiper.Token, margin time.Duration, now time.Time) *entry {
	e := &entry{tok: tok, margin: margin}
	e.lastUsed.Store(now.UnixNano())
	return e
}

type flight struct {
	done chan struct{}
	e    *entry
	err  error
}

// NewTokenCache returns a TokenCache; Run must be running for the Redis
// layer's notifications and the refresh-ahead sweep.
func NewTokenCache(issuer Issuer, keys KeyLookup, cfg TokenCacheConfig) *TokenCache {
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "hipersync:"
	}
	if cfg.MaxMargin <= 0 {
		cfg.MaxMargin = 5 * time.Minute
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 10 * time.Second
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = time.Second
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 20 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Sealer == nil {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		cfg.Sealer, _ = tenant.NewSealer(k)
	}
	return &TokenCache{
		cfg: cfg, issuer: issuer, keys: keys,
		local:      map[string]*entry{},
		flights:    map[string]*flight{},
		refreshing: map[string]bool{},
		waiters:    map[string][]chan struct{}{},
	}
}

func (c *TokenCache) tokenKey(tenant string) string { return c.cfg.KeyPrefix + "token:" + tenant }
func (c *TokenCache) lockKey(tenant string) string  { return c.cfg.KeyPrefix + "lock:" + tenant }
func (c *TokenCache) channel() string               { return c.cfg.KeyPrefix + "token-events" }

// margin is how long before its expiry a token stops being handed out: a
// fifth of its lifetime, at most MaxMargin. Refresh starts a margin earlier.
func (c *TokenCache) margin(lifetime time.Duration) time.Duration {
	return min(lifetime/5, c.cfg.MaxMargin)
}

func (e *entry) usable(now time.Time) bool { return now.Before(e.tok.ExpiresAt.Add(-e.margin)) }
func (e *entry) fresh(now time.Time) bool  { return now.Before(e.tok.ExpiresAt.Add(-2 * e.margin)) }

// Get returns a token for tenantID that stays valid for at least its margin.
// The caller has checked that the tenant may have one.
func (c *TokenCache) Get(ctx context.Context, tenantID string) (hiper.Token, error) {
	c.mu.RLock()
	e := c.local[tenantID]
	c.mu.RUnlock()
	// The clock is read after the lookup, so a wait for the lock counts.
	if now := c.cfg.Now(); e != nil && e.usable(now) {
		e.lastUsed.Store(now.UnixNano())
		c.cfg.Metrics.memoryHits.Inc()
		if !e.fresh(now) {
			c.refreshAsync(tenantID)
		}
		return e.tok, nil
	}
	return c.load(ctx, tenantID)
}

// load fetches a tenant's token once per process however many callers miss
// at the same moment. What it returns is usable when it returns: a fetch
// checks its token when it finds it, but Redis writes, the lock's release
// and waking the callers that joined it come after, and a token that ran
// into its margin meanwhile (a slow Redis, a stalled process) is fetched
// again rather than handed out.
func (c *TokenCache) load(ctx context.Context, tenantID string) (hiper.Token, error) {
	for {
		e, err := c.join(ctx, tenantID)
		if err != nil {
			return hiper.Token{}, err
		}
		if e.usable(c.cfg.Now()) {
			return e.tok, nil
		}
		if err := ctx.Err(); err != nil {
			return hiper.Token{}, err
		}
	}
}

// join runs a fetch of tenantID's token, or waits for the one under way.
func (c *TokenCache) join(ctx context.Context, tenantID string) (*entry, error) {
	c.mu.Lock()
	f, joined := c.flights[tenantID]
	if !joined {
		f = &flight{done: make(chan struct{})}
		c.flights[tenantID] = f
	}
	c.mu.Unlock()
	if !joined {
		// The fetch outlives any one caller: the others are waiting on it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.FetchTimeout)
		f.e, f.err = c.fetch(fctx, tenantID, (*entry).usable)
		cancel()
		c.mu.Lock()
		delete(c.flights, tenantID)
		c.mu.Unlock()
		close(f.done)
	}
	select {
	case <-f.done:
		return f.e, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// refreshAsync renews a tenant's token in the background, once at a time.
func (c *TokenCache) refreshAsync(tenantID string) {
	c.mu.Lock()
	if c.refreshing[tenantID] {
		c.mu.Unlock()
		return
	}
	c.refreshing[tenantID] = true
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			delete(c.refreshing, tenantID)
			c.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.FetchTimeout)
		defer cancel()
		if _, err := c.fetch(ctx, tenantID, (*entry).fresh); err != nil {
			c.cfg.Log.Warn("refresh token ahead of expiry", "tenant", tenantID, "err", err)
		}
	}()
}

// fetch finds a token that good accepts: in Redis, or from Hiper under the
// tenant's Redis lock, or, with Redis unreachable, from Hiper directly.
func (c *TokenCache) fetch(ctx context.Context, tenantID string, good func(*entry, time.Time) bool) (*entry, error) {
	if c.cfg.Redis == nil {
		return c.issue(ctx, tenantID)
	}
	for {
		if e, err := c.fromRedis(ctx, tenantID); err != nil {
			return c.degraded(ctx, tenantID, err)
		} else if e != nil && good(e, c.cfg.Now()) {
			c.cfg.Metrics.redisHits.Inc()
			c.remember(tenantID, e)
			return e, nil
		}

		lockValue := randomToken()
		locked, err := c.cfg.Redis.SetNX(ctx, c.lockKey(tenantID), lockValue, c.cfg.LockTTL).Result()
		if err != nil {
			return c.degraded(ctx, tenantID, err)
		}
		c.redisErr.Store(nil)
		if locked {
			return c.issueLocked(ctx, tenantID, lockValue, good)
		}

		// Another replica is fetching: wait to hear from it, or for its lock
		// to lapse, then look again.
		wake := c.wait(tenantID)
		if e, err := c.fromRedis(ctx, tenantID); err == nil && e != nil && good(e, c.cfg.Now()) {
			c.unwait(tenantID, wake)
			c.cfg.Metrics.redisHits.Inc()
			c.remember(tenantID, e)
			return e, nil
		}
		timer := time.NewTimer(c.cfg.LockTTL)
		select {
		case <-wake:
		case <-timer.C:
			c.unwait(tenantID, wake)
		case <-ctx.Done():
			timer.Stop()
			c.unwait(tenantID, wake)
			return nil, fmt.Errorf("wait for another replica's token refresh: %w", ctx.Err())
		}
		timer.Stop()
	}
}

func (c *TokenCache) issueLocked(ctx context.Context, tenantID, lockValue string, good func(*entry, time.Time) bool) (*entry, error) {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = releaseLock.Run(rctx, c.cfg.Redis, []string{c.lockKey(tenantID)}, lockValue).Err()
	}()
	defer c.holdLock(ctx, tenantID, lockValue)()
	// Someone may have stored a token between our look and our lock.
	if e, err := c.fromRedis(ctx, tenantID); err == nil && e != nil && good(e, c.cfg.Now()) {
		c.cfg.Metrics.redisHits.Inc()
		c.remember(tenantID, e)
		return e, nil
	}
	e, err := c.issue(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	c.share(ctx, tenantID, e)
	return e, nil
}

// holdLock renews the tenant's refresh lock every third of LockTTL until
// the returned stop is called: a Hiper slower than LockTTL must not let
// another replica take the lock and ask for a second token. A replica that
// stops (or loses Redis) stops renewing, and the lock lapses.
func (c *TokenCache) holdLock(ctx context.Context, tenantID, lockValue string) (stop func()) {
	return renew.Every(ctx, c.cfg.LockTTL/3, func(ctx context.Context) bool {
		n, err := extendLock.Run(ctx, c.cfg.Redis, []string{c.lockKey(tenantID)}, lockValue, c.cfg.LockTTL.Milliseconds()).Int()
		return err == nil && n != 0 // lost: another replica may fetch too
	})
}

// share stores a token in Redis for the other replicas and tells them, for
// as long as it may be handed out.
func (c *TokenCache) share(ctx context.Context, tenantID string, e *entry) {
	ttl := e.tok.ExpiresAt.Add(-e.margin).Sub(c.cfg.Now())
	if c.cfg.Redis == nil || ttl <= 0 {
		return
	}
	pipe := c.cfg.Redis.TxPipeline()
	v, err := c.encodeToken(tenantID, e.tok, e.margin)
	if err != nil {
		c.cfg.Log.Warn("seal a token for redis", "tenant", tenantID, "err", err)
		return
	}
	pipe.Set(ctx, c.tokenKey(tenantID), v, ttl)
	pipe.Publish(ctx, c.channel(), tenantID+" "+fingerprint(e.tok.Value))
	if _, err := pipe.Exec(ctx); err != nil {
		c.redisErr.Store(&err)
		c.cfg.Log.Warn("store token in redis", "tenant", tenantID, "err", err)
	}
}

// issue asks Hiper for a token and keeps it in memory.
func (c *TokenCache) issue(ctx context.Context, tenantID string) (*entry, error) {
	key, err := c.keys(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	start := c.cfg.Now()
	tok, err := c.issuer.Token(ctx, key)
	c.cfg.Metrics.refreshSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		c.cfg.Metrics.hiperCalls.WithLabelValues(outcome(err)).Inc()
		if errors.Is(err, hiper.ErrInvalidKey) && c.cfg.OnKeyRefused != nil {
			c.cfg.OnKeyRefused(ctx, tenantID, err)
		}
		return nil, fmt.Errorf("get token from hiper: %w", err)
	}
	c.cfg.Metrics.hiperCalls.WithLabelValues("ok").Inc()
	c.cfg.Metrics.hiperHits.Inc()
	// The margin is a share of the lifetime from before the call, not of
	// what is left after it: a slow Hiper must not shrink the margin that
	// is there for slowness.
	now := c.cfg.Now()
	e := newEntry(tok, c.margin(tok.ExpiresAt.Sub(start)), now)
	if !e.usable(now) {
		return nil, fmt.Errorf("get token from hiper: it expires at %s, too soon to use", tok.ExpiresAt.Format(time.RFC3339))
	}
	c.remember(tenantID, e)
	return e, nil
}

func outcome(err error) string {
	switch {
	case errors.Is(err, hiper.ErrInvalidKey):
		return "invalid_key"
	case errors.Is(err, hiper.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	default:
		return "error"
	}
}

// degraded serves a token without Redis, remembering why for readiness.
func (c *TokenCache) degraded(ctx context.Context, tenantID string, cause error) (*entry, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if c.redisErr.Load() == nil {
		c.cfg.Log.Warn("redis unreachable; serving tokens from this replica alone", "err", cause)
	}
	c.redisErr.Store(&cause)
	c.cfg.Metrics.redisErrors.Inc()
	// Recheck memory: another caller may have fetched while Redis failed us.
	c.mu.RLock()
	e := c.local[tenantID]
	c.mu.RUnlock()
	if e != nil && e.usable(c.cfg.Now()) {
		return e, nil
	}
	return c.issue(ctx, tenantID)
}

// RedisErr is the last Redis failure, or nil when Redis answers (or is not
// used). Readiness reports it as a degradation.
func (c *TokenCache) RedisErr() error {
	if p := c.redisErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *TokenCache) fromRedis(ctx context.Context, tenantID string) (*entry, error) {
	v, err := c.cfg.Redis.Get(ctx, c.tokenKey(tenantID)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e, ok := c.decodeToken(tenantID, v)
	if !ok {
		return nil, nil
	}
	e.lastUsed.Store(c.cfg.Now().UnixNano())
	return e, nil
}

func (c *TokenCache) remember(tenantID string, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.local[tenantID]; old != nil && old.tok.ExpiresAt.After(e.tok.ExpiresAt) {
		return
	}
	c.local[tenantID] = e
}

// Invalidate drops token if it is still tenantID's current token, in memory
// and in Redis, and starts a refresh. It reports whether it dropped it: a
// burst of 401s for one token drops it once and causes one refresh.
func (c *TokenCache) Invalidate(ctx context.Context, tenantID, token string) (bool, error) {
	dropped := false
	c.mu.Lock()
	if e := c.local[tenantID]; e != nil && e.tok.Value == token {
		delete(c.local, tenantID)
		dropped = true
	}
	c.mu.Unlock()
	if c.cfg.Redis != nil {
		n, err := invalidateToken.Run(ctx, c.cfg.Redis, []string{c.tokenKey(tenantID)}, fingerprint(token)).Int()
		switch {
		case err != nil:
			c.redisErr.Store(&err)
		case n == 1:
			dropped = true
			if err := c.cfg.Redis.Publish(ctx, c.channel(), tenantID+" -").Err(); err != nil {
				// Other replicas keep their copy until a 401 makes their
				// callers report it too: one more refresh, nothing worse.
				c.cfg.Log.Warn("tell other replicas of an invalidated token", "tenant", tenantID, "err", err)
			}
		}
	}
	if dropped {
		c.cfg.Metrics.invalidations.Inc()
		c.refreshAsync(tenantID)
	}
	return dropped, nil
}

// Forget drops every token of a tenant (paused, disconnected).
func (c *TokenCache) Forget(ctx context.Context, tenantID string) error {
	c.mu.Lock()
	delete(c.local, tenantID)
	c.mu.Unlock()
	if c.cfg.Redis == nil {
		return nil
	}
	pipe := c.cfg.Redis.TxPipeline()
	pipe.Del(ctx, c.tokenKey(tenantID))
	pipe.Publish(ctx, c.channel(), tenantID+" -")
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("forget tokens in redis: %w", err)
	}
	return nil
}

// Run listens for other replicas' token news and refreshes the tokens of
// recently used tenants ahead of expiry, until ctx is done.
func (c *TokenCache) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if c.cfg.Redis != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.listen(ctx)
		}()
	}
	t := time.NewTicker(c.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			c.sweep()
		}
	}
}

// listen applies other replicas' news: a tenant's token changed (drop ours
// unless it is the same) and wakes the callers waiting for it.
func (c *TokenCache) listen(ctx context.Context) {
	sub := c.cfg.Redis.Subscribe(ctx, c.channel())
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			tenantID, fp, _ := strings.Cut(msg.Payload, " ")
			c.mu.Lock()
			if e := c.local[tenantID]; e != nil && fingerprint(e.tok.Value) != fp {
				delete(c.local, tenantID)
			}
			for _, w := range c.waiters[tenantID] {
				close(w)
			}
			delete(c.waiters, tenantID)
			c.mu.Unlock()
		}
	}
}

func (c *TokenCache) wait(tenantID string) chan struct{} {
	ch := make(chan struct{})
	c.mu.Lock()
	c.waiters[tenantID] = append(c.waiters[tenantID], ch)
	c.mu.Unlock()
	return ch
}

func (c *TokenCache) unwait(tenantID string, ch chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws := c.waiters[tenantID]
	for i, w := range ws {
		if w == ch {
			c.waiters[tenantID] = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(c.waiters[tenantID]) == 0 {
		delete(c.waiters, tenantID)
	}
}

// sweep refreshes, ahead of expiry, the tokens of tenants used within their
// token's lifetime, and forgets the others once expired.
func (c *TokenCache) sweep() {
	now := c.cfg.Now()
	var due []string
	c.mu.Lock()
	for id, e := range c.local {
		switch {
		case !now.Before(e.tok.ExpiresAt):
			delete(c.local, id)
		case !e.fresh(now) && now.Sub(time.Unix(0, e.lastUsed.Load())) < 5*e.margin:
			due = append(due, id)
		}
	}
	c.mu.Unlock()
	for _, id := range due {
		c.refreshAsync(id)
	}
}

// Redis values are "<expiry unix ms> <margin ms> <fingerprint> <sealed>":
// the token sealed under the master key (bound to the tenant, apart from
// its security key), and its fingerprint, so that an invalidation can
// compare without opening it. Nothing in Redis is usable without the
// master key.
func (c *TokenCache) encodeToken(tenantID string, tok hiper.Token, margin time.Duration) (string, error) {
	sealed, err := c.cfg.Sealer.Seal(tokenSealID(tenantID), tok.Value)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(tok.ExpiresAt.UnixMilli(), 10) + " " + strconv.FormatInt(margin.Milliseconds(), 10) + " " +
		fingerprint(tok.Value) + " " + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// decodeToken opens a Redis value; anything else (a plaintext value an
// older version wrote, another master key's) is no token: it is fetched
// again and overwritten.
func (c *TokenCache) decodeToken(tenantID, v string) (*entry, bool) {
	parts := strings.Split(v, " ")
	if len(parts) != 4 {
		return nil, false
	}
	exp, err1 := strconv.ParseInt(parts[0], 10, 64)
	margin, err2 := strconv.ParseInt(parts[1], 10, 64)
	sealed, err3 := base64.RawStdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, false
	}
	value, err := c.cfg.Sealer.Open(tokenSealID(tenantID), sealed)
	if err != nil || value == "" || fingerprint(value) != parts[2] {
		return nil, false
	}
	return &entry{tok: hiper.Token{Value: value, ExpiresAt: time.UnixMilli(exp)}, margin: time.Duration(margin) * time.Millisecond}, true
}

// tokenSealID is what a tenant's token is sealed for: not the tenant id
// alone, so a sealed token never opens as the tenant's security key.
func tokenSealID(tenantID string) string { return "token\x00" + tenantID }

func fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// releaseLock deletes the lock only if we still hold it: after LockTTL it may
// belong to another replica.
var releaseLock = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// extendLock renews the lock (ARGV[2] milliseconds) only if we still hold
// it.
var extendLock = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// invalidateToken deletes the stored token only if it is the one refused
// (ARGV[1], its fingerprint).
var invalidateToken = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if v then
	local fp = string.match(v, "^%S+ %S+ (%S+) %S+$")
	if fp == ARGV[1] then
		return redis.call("DEL", KEYS[1])
	end
end
return 0`)

// prime keeps and shares a token issued outside the cache (the one that
// validated a key at connect, asked for at asked), so no replica asks Hiper
// for another. Its margin counts from asked, as issue's does.
func (c *TokenCache) prime(ctx context.Context, tenantID string, tok hiper.Token, asked time.Time) {
	now := c.cfg.Now()
	e := newEntry(tok, c.margin(tok.ExpiresAt.Sub(asked)), now)
	if e.usable(now) {
		c.remember(tenantID, e)
		c.share(ctx, tenantID, e)
	}
}

// forgetLocal drops a tenant's token from this process only.
func (c *TokenCache) forgetLocal(tenantID string) {
	c.mu.Lock()
	delete(c.local, tenantID)
	c.mu.Unlock()
}

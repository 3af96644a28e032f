package broker

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/redisconn"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// redisServer is a redis-server of the test's own on a free port, so the
// test can restart it without touching the machine's.
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (.ci/run installs it)")
	}
	port := testkit.FreePorts(t, 1)[0] // it restarts on the same port
	r := &redisServer{t: t, bin: bin, port: port, dir: t.TempDir()}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(r.port), "--save", "", "--appendonly", "no",
		"--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	testkit.WaitFor(r.t, 10*time.Second, "redis-server to answer", func() bool { return c.Ping(context.Background()).Err() == nil })
}

func (r *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

func (r *redisServer) kill() {
	if r.cmd.Process != nil && r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

// Redis restarts (empty: no persistence) while two replicas serve tokens
// to callers of three stores: every call is answered, and once Redis is
// back, each expiry is refreshed by one Hiper token call per store, not
// one per replica. Each phase waits for what it needs, not for a time.
func TestRedisRestartUnderLoad(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	rdb, err := redisconn.Open("redis://"+srv.addr()+"/0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	const ttl = 3 * time.Second
	c := newCluster(t, clusterOpts{replicas: 2, tokenTTL: ttl, redis: rdb})
	stores := []string{"acme", "beta", "gama"}
	for _, id := range stores {
		c.addColdTenant(id)
	}

	type handout struct {
		store   string
		expires time.Time
	}
	var (
		mu      sync.Mutex
		handed  = map[string]handout{} // every token a caller was handed
		calls   int
		failure error
	)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() }) // a phase that timed out: before the cluster stops
	// One caller per replica and store.
	for i := range 6 {
		wg.Go(func() {
			pace := time.NewTicker(5 * time.Millisecond)
			defer pace.Stop()
			for ctx.Err() == nil {
				<-pace.C
				id := stores[i%len(stores)]
				cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				tok, err := c.clients[i%2].Token(cctx, id)
				cancel()
				mu.Lock()
				calls++
				if err != nil && failure == nil {
					failure = fmt.Errorf("token for %s: %w", id, err)
				}
				if err == nil {
					handed[tok.Value] = handout{id, tok.ExpiresAt}
				}
				mu.Unlock()
			}
		})
	}
	// handedOf counts, per store, the tokens callers were handed among
	// those issued.
	handedOf := func(issued []hipersim.IssuedToken) map[string]int {
		n := map[string]int{}
		mu.Lock()
		defer mu.Unlock()
		for _, it := range issued {
			if h, ok := handed[it.Token]; ok {
				n[h.store]++
			}
		}
		return n
	}
	eachStoreHanded := func(from, want int) bool {
		n := handedOf(c.issuedTokens()[from:])
		for _, id := range stores {
			if n[id] < want {
				return false
			}
		}
		return true
	}
	redisDown := func() (n int) {
		for _, b := range c.brokers {
			if b.Tokens.RedisErr() != nil {
				n++
			}
		}
		return n
	}

	testkit.WaitFor(t, 20*time.Second, "each store to be handed a token and its refresh", func() bool {
		return eachStoreHanded(0, 2)
	})
	srv.kill()
	killed := len(c.issuedTokens())
	testkit.WaitFor(t, 20*time.Second, "both replicas to notice Redis is gone and each store to be handed a token issued since",
		func() bool { return redisDown() == len(c.brokers) && eachStoreHanded(killed, 1) })
	srv.start()
	var latest time.Time // the latest expiry of a token handed until Redis was back
	testkit.WaitFor(t, 20*time.Second, "both replicas to use Redis again", func() bool {
		if redisDown() > 0 {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		for _, h := range handed {
			if h.expires.After(latest) {
				latest = h.expires
			}
		}
		return true
	})
	// Each replica may still hold tokens it got from Hiper alone during
	// the outage; once they have expired, every token comes through Redis.
	testkit.WaitFor(t, 2*ttl, "the tokens handed until Redis was back to expire", func() bool { return time.Now().After(latest) })
	back := len(c.issuedTokens())
	testkit.WaitFor(t, 20*time.Second, "each store to be handed 2 tokens issued since", func() bool { return eachStoreHanded(back, 2) })
	issued := c.issuedTokens()[back:]
	// A token is handed out by the next call of the replica that asked for
	// it; the token of a duplicated refresh's loser never is, and stops
	// being handed out at all within a token's lifetime.
	unhanded := func() (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, it := range issued {
			if _, ok := handed[it.Token]; !ok {
				n++
			}
		}
		return n
	}
	testkit.Until(ttl, func() bool { return unhanded() == 0 }) // judged below, once the callers stopped
	stop()
	testkit.Wait(t, &wg, time.Minute, "the callers to stop")

	if failure != nil {
		t.Fatalf("a caller got no token while Redis restarted: %v", failure)
	}
	perStore := handedOf(issued)
	t.Logf("%d calls; after Redis came back: %d tokens issued, handed out %v", calls, len(issued), perStore)
	// A duplicated refresh shows as a token issued that no caller was
	// handed (the loser's), or as two tokens of one store and expiry.
	if n := unhanded(); n > 0 {
		t.Errorf("hiper-sim issued %d tokens after Redis came back, and %d never reached a caller: a refresh was duplicated", len(issued), n)
	}
	generation := map[string]bool{}
	for _, it := range issued {
		h, ok := handed[it.Token]
		if !ok {
			continue
		}
		g := fmt.Sprintf("%s@%d", h.store, h.expires.Unix())
		if generation[g] {
			t.Errorf("%s got two tokens expiring at %s: one expiry was refreshed twice", h.store, h.expires)
		}
		generation[g] = true
	}
}

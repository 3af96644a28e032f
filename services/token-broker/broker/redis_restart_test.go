package broker

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hipersync/hipersync/pkg/redisconn"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// redisServer is a redis-server of the test's own on a free port, so the
// test can restart it without touching the machine's.
type redisServer struct {
	t    *testing.T
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
	r := &redisServer{t: t, port: port, dir: t.TempDir()}
	r.cmd = exec.Command(bin)
	r.start(bin)
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) start(bin string) {
	r.t.Helper()
	r.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(r.port), "--save", "", "--appendonly", "no",
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
// one per replica.
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

	var (
		mu      sync.Mutex
		phase   int                      // 0 before the restart, 1 after Redis is back, 2 after the count
		counted time.Time                // the whole second after the count
		handed  = map[string]string{}    // new token after Redis is back → store
		expires = map[string]time.Time{} // its expiry
		before  = map[string]bool{}      // tokens handed out until then
		calls   int
		failure error
	)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
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
				switch {
				case err != nil:
				case phase == 0:
					before[tok.Value] = true
				case before[tok.Value]:
				case phase == 1 || tok.ExpiresAt.Before(counted.Add(ttl)): // issued before counted
					handed[tok.Value], expires[tok.Value] = id, tok.ExpiresAt
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(ttl) // load before the restart; a refresh or two happens
	srv.kill()
	time.Sleep(ttl / 2)
	srv.start("redis-server")
	testkit.WaitFor(t, 15*time.Second, "both replicas to use Redis again", func() bool {
		return c.brokers[0].Tokens.RedisErr() == nil && c.brokers[1].Tokens.RedisErr() == nil
	})
	// The tokens each replica holds from the outage are refreshed at their
	// expiry; from the next generation on, one refresh serves both.
	time.Sleep(ttl + ttl/2)
	mu.Lock()
	phase = 1
	issuedBefore := c.tokensIssued()
	mu.Unlock()
	time.Sleep(2*ttl + ttl/2)
	// The tokens issued are counted while the callers still call: counted
	// after they stopped, a refresh ahead of expiry in between would be a
	// token no caller was handed. The callers go on a second, so a token
	// issued just before the count still reaches them; a token's expiry is
	// in whole seconds, so those issued before the whole second after the
	// count are told from later ones by it. Counting just before a whole
	// second leaves few later ones among them.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(900 * time.Millisecond)))
	mu.Lock()
	phase = 2
	issued := c.tokensIssued() - issuedBefore
	counted = time.Now().Truncate(time.Second).Add(time.Second)
	mu.Unlock()
	time.Sleep(time.Second)
	stop()
	testkit.Wait(t, &wg, time.Minute, "the callers to stop")

	if failure != nil {
		t.Fatalf("a caller got no token while Redis restarted: %v", failure)
	}
	perStore := map[string]int{}
	for _, id := range handed {
		perStore[id]++
	}
	t.Logf("%d calls; after Redis came back: %d tokens issued, %d handed out %v", calls, issued, len(handed), perStore)
	// A duplicated refresh shows as a token issued that no caller was
	// handed (the loser's), or as two tokens of one store and generation.
	if issued > len(handed) {
		t.Errorf("hiper-sim issued %d tokens after Redis came back but callers were handed %d: a refresh was duplicated", issued, len(handed))
	}
	generation := map[string]bool{}
	for tok, id := range handed {
		g := fmt.Sprintf("%s@%d", id, expires[tok].Unix())
		if generation[g] {
			t.Errorf("%s got two tokens expiring at %s: one expiry was refreshed twice", id, expires[tok])
		}
		generation[g] = true
	}
	for _, id := range stores {
		if perStore[id] < 2 {
			t.Errorf("%s: %d new tokens over %s with a %s lifetime: tokens were not refreshed", id, perStore[id], 2*ttl+ttl/2, ttl)
		}
	}
}

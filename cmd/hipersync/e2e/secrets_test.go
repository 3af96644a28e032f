package e2e

import (
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/hipersync/hipersync/pkg/events"
)

// logFiles are the log files of every process a test started, restarts
// included, by top-level test, so that a test reads all of its own at the
// end and none of a parallel test's, which that test removes when it ends.
var logFiles struct {
	mu    sync.Mutex
	paths map[string][]string
}

func registerLog(t testing.TB, path string) {
	logFiles.mu.Lock()
	defer logFiles.mu.Unlock()
	if logFiles.paths == nil {
		logFiles.paths = map[string][]string{}
	}
	root := rootTest(t)
	logFiles.paths[root] = append(logFiles.paths[root], path)
}

// rootTest is the name of the top-level test t belongs to.
func rootTest(t testing.TB) string {
	root, _, _ := strings.Cut(t.Name(), "/")
	return root
}

// hiperToken matches a Hiper token (a JWT) wherever it is.
var hiperToken = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+`)

// assertNoSecrets reads every log line the services wrote (at debug level),
// every dead letter and every value hipersync keeps in Redis, and fails on a
// Hiper token, a security key (in any case), the master key, or a private key.
func assertNoSecrets(t *testing.T, js jetstream.JetStream, ns events.Namespace, redisURL string, secrets map[string]string) {
	t.Helper()
	check := func(where, text string) {
		lower := strings.ToLower(text)
		for what, s := range secrets {
			if s != "" && strings.Contains(lower, strings.ToLower(s)) {
				t.Errorf("%s holds the %s", where, what)
			}
		}
		if m := hiperToken.FindString(text); m != "" {
			t.Errorf("%s holds a Hiper token (%.20s…)", where, m)
		}
		if strings.Contains(text, "PRIVATE KEY") {
			t.Errorf("%s holds a private key", where)
		}
	}

	logFiles.mu.Lock()
	paths := append([]string(nil), logFiles.paths[rootTest(t)]...)
	logFiles.mu.Unlock()
	lines := 0
	for _, p := range paths {
		if strings.HasSuffix(p, "/hiper-sim.log") {
			continue // the stand-in for Hiper prints its accounts' keys
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			lines++
			check(p+":"+itoa(i+1), line)
		}
	}
	if lines < 100 {
		t.Fatalf("read only %d log lines: the scan proves nothing", lines)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, ns.Stream(events.StreamDeadLetter), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for n := info.NumPending; n > 0; {
		batch, err := cons.Fetch(int(min(n, 100)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			n--
			var hdr strings.Builder
			for k, v := range m.Headers() {
				hdr.WriteString(k + ": " + strings.Join(v, ",") + "\n")
			}
			check("dead letter "+m.Subject(), hdr.String()+string(m.Data()))
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
	}

	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	keys := 0
	iter := rdb.Scan(ctx, 0, "hipersync:"+ns.Prefix+":*", 100).Iterator()
	for iter.Next(ctx) {
		if v, err := rdb.Get(ctx, iter.Val()).Result(); err == nil {
			keys++
			check("redis "+iter.Val(), v)
		}
	}
	if keys == 0 {
		t.Error("no token in Redis: the scan proves nothing")
	}
	t.Logf("no secret in %d log lines, %d dead letters, %d Redis values", lines, info.NumPending, keys)
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

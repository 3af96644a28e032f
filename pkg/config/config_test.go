package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestLoadCommonDefaults(t *testing.T) {
	t.Parallel()
	l := NewLoader(Map(nil))
	c := l.LoadCommon()
	if err := l.Err(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.NATS.URL != DefaultNATSURL || c.RedisURL != DefaultRedisURL || c.HiperBaseURL != DefaultHiperBaseURL ||
		c.TokenBrokerAddr != DefaultTokenBrokerAddr || c.HTTPAddr != DefaultHTTPAddr || c.EventsFormat != "protobuf" || c.StreamReplicas != 1 {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestLoaderNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	l := NewLoader(Map(map[string]string{
		"NATS_URL":                  "http://x:4222",
		"REDIS_URL":                 "not a url",
		"HTTP_ADDR":                 "8080",
		"EVENTS_FORMAT":             "xml",
		"SOME_TTL":                  "-5s",
		"SOME_COUNT":                "ten",
		"SOME_FLAG":                 "maybe",
		"MASTER":                    "c2hvcnQ=",
		"HIPERSYNC_STREAM_REPLICAS": "7",
		"LOG_LEVEL":                 "verbose",
		"HIPER_BASE_URL":            "https://hiper.example/api/v1",
	}))
	l.LoadCommon()
	l.Duration("SOME_TTL", time.Second)
	l.Int("SOME_COUNT", 1)
	l.Bool("SOME_FLAG", false)
	l.Key32("MASTER")
	l.Required("MISSING")
	err := l.Err()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"NATS_URL", "REDIS_URL", "HTTP_ADDR", "EVENTS_FORMAT", "SOME_TTL", "SOME_COUNT", "SOME_FLAG", "MASTER", "MISSING", "HIPERSYNC_STREAM_REPLICAS", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "HIPER_BASE_URL") {
		t.Errorf("a valid variable was reported: %v", err)
	}
}

func TestLoaderValues(t *testing.T) {
	t.Parallel()
	l := NewLoader(Map(map[string]string{
		"D": "90s", "N": "7", "B": "true", "F": "0.25",
		"K":    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"NATS": "nats://a:4222,nats://b:4222",
	}))
	if d := l.Duration("D", 0); d != 90*time.Second {
		t.Errorf("duration: %v", d)
	}
	if n := l.Int("N", 0); n != 7 {
		t.Errorf("int: %v", n)
	}
	if b := l.Bool("B", false); !b {
		t.Errorf("bool: %v", b)
	}
	if f := l.Float("F", 0); f != 0.25 {
		t.Errorf("float: %v", f)
	}
	if k := l.Key32("K"); len(k) != 32 || k[31] != 31 {
		t.Errorf("key: %v", k)
	}
	if u := l.URL("NATS", "", "nats"); u != "nats://a:4222,nats://b:4222" {
		t.Errorf("url list: %v", u)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                    "nats://127.0.0.1:4222",
		"nats://ana:s3cret@nats:4222":              "nats://ana:xxxxx@nats:4222",
		"nats://Tok3nValue@nats:4222":              "nats://xxxxx@nats:4222",
		"nats://a:p1@n1:4222, nats://a:p2@n2:4222": "nats://a:xxxxx@n1:4222,nats://a:xxxxx@n2:4222",
		"redis://:pw@redis:6379/0":                 "redis://:xxxxx@redis:6379/0",
		"nats://ana:bad%zzpass@nats:4222":          "nats://xxxxx@nats:4222",
		"tls://ana:s3cret@nats.example:4443?x=1#f": "tls://ana:xxxxx@nats.example:4443?x=1#f",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadNATS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	creds := dir + "/store.creds"
	if err := os.WriteFile(creds, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := NewLoader(Map(map[string]string{"NATS_CREDS": creds, "NATS_TLS_CA": creds}))
	n := l.LoadNATS()
	if err := l.Err(); err != nil || n.Creds != creds || n.TLSCA != creds || n.URL != DefaultNATSURL {
		t.Fatalf("LoadNATS = %+v, %v", n, err)
	}
	l = NewLoader(Map(map[string]string{
		"NATS_URL": "http://ana:s3cret@x:4222", "NATS_CREDS": creds, "NATS_NKEY": creds,
		"NATS_TLS_CERT": creds, "NATS_TLS_KEY": dir + "/missing.key",
	}))
	l.LoadNATS()
	err := l.Err()
	for _, want := range []string{"NATS_URL:", "NATS_NKEY: set NATS_CREDS or NATS_NKEY", "NATS_TLS_KEY: cannot read", "NATS_TLS_CERT: NATS_TLS_CERT and NATS_TLS_KEY go together"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error holds the password: %v", err)
	}
}

// Package config reads a service's configuration from the environment. Every
// binary uses the same variable names (README, "Configuration"); a missing or
// malformed variable stops the binary at start with a message naming it.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hipersync/hipersync/pkg/tlsfiles"
)

// Defaults of the variables every binary shares.
const (
	DefaultNATSURL         = "nats://127.0.0.1:4222"
	DefaultRedisURL        = "redis://127.0.0.1:6379/0"
	DefaultHiperBaseURL    = "https://ms-ecommerce.hiper.com.br/api/v1"
	DefaultTokenBrokerAddr = "127.0.0.1:9090"
	DefaultGRPCAddr        = ":9090"
	DefaultHTTPAddr        = ":8080"
)

// Default bounds of the JetStream streams and buckets, sized for 2,000
// stores in docs/operations.md ("Storage").
const (
	DefaultStreamMaxAge       = 7 * 24 * time.Hour
	DefaultStoreMaxBytes      = 4 << 30
	DefaultHiperMaxBytes      = 8 << 30
	DefaultDeadLetterMaxAge   = 30 * 24 * time.Hour
	DefaultDeadLetterMaxBytes = 1 << 30
	DefaultBucketMaxBytes     = 2 << 30
	DefaultAuditMaxBytes      = 1 << 30
)

// Env reads variables: os.Getenv in a binary, a map in a test.
type Env func(name string) string

// Map returns an Env over m, for tests.
func Map(m map[string]string) Env { return func(name string) string { return m[name] } }

// Loader reads variables and collects every problem, so one start-up error
// names all the variables at fault rather than the first one.
type Loader struct {
	env  Env
	errs []error
}

// NewLoader returns a Loader over env.
func NewLoader(env Env) *Loader { return &Loader{env: env} }

// Err returns every problem found so far, or nil.
func (l *Loader) Err() error { return errors.Join(l.errs...) }

// Fail records a problem with the variable name (a check across variables).
func (l *Loader) Fail(name, format string, args ...any) { l.fail(name, format, args...) }

// Default sets *v to def when *v is zero or less: the zero value of a
// tuning field means its default.
func Default[T ~int | ~int64 | ~float64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// InsecureEnv is HIPERSYNC_INSECURE: "1" lets a dev run or a test serve and
// call token-broker without TLS. Production binaries refuse otherwise.
const InsecureEnv = "HIPERSYNC_INSECURE"

func (l *Loader) fail(name, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

func (l *Loader) lookup(name string) (string, bool) {
	v := strings.TrimSpace(l.env(name))
	return v, v != ""
}

// String returns the variable, or def when unset.
func (l *Loader) String(name, def string) string {
	if v, ok := l.lookup(name); ok {
		return v
	}
	return def
}

// Required returns the variable, recording an error when it is unset.
func (l *Loader) Required(name string) string {
	v, ok := l.lookup(name)
	if !ok {
		l.fail(name, "is required")
	}
	return v
}

// Int returns the variable as an integer, or def when unset.
func (l *Loader) Int(name string, def int) int {
	v, ok := l.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		l.fail(name, "want a whole number, got %q", v)
		return def
	}
	return n
}

// Float returns the variable as a number, or def when unset.
func (l *Loader) Float(name string, def float64) float64 {
	v, ok := l.lookup(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		l.fail(name, "want a number, got %q", v)
		return def
	}
	return f
}

// Bool returns the variable as a boolean, or def when unset.
func (l *Loader) Bool(name string, def bool) bool {
	v, ok := l.lookup(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.fail(name, "want true or false, got %q", v)
		return def
	}
	return b
}

// Duration returns the variable as a Go duration ("90s", "5m"), or def when
// unset. Zero and negative durations are refused.
func (l *Loader) Duration(name string, def time.Duration) time.Duration {
	v, ok := l.lookup(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		l.fail(name, "want a positive duration such as 30s or 5m, got %q", v)
		return def
	}
	return d
}

// URL returns the variable, or def when unset, checking that it is a URL
// with one of the given schemes. A comma-separated list of URLs (NATS
// servers) is checked item by item.
func (l *Loader) URL(name, def string, schemes ...string) string {
	v := l.String(name, def)
	for _, item := range strings.Split(v, ",") {
		u, err := url.Parse(strings.TrimSpace(item))
		if err != nil || u.Host == "" || !contains(schemes, u.Scheme) {
			l.fail(name, "want a URL with scheme %s, got %q", strings.Join(schemes, " or "), RedactURL(item))
			return def
		}
	}
	return v
}

// Addr returns the variable, or def when unset, checking it is host:port.
func (l *Loader) Addr(name, def string) string {
	v := l.String(name, def)
	i := strings.LastIndex(v, ":")
	if i < 0 {
		l.fail(name, "want host:port, got %q", v)
		return def
	}
	if p, err := strconv.Atoi(v[i+1:]); err != nil || p < 0 || p > 65535 {
		l.fail(name, "want host:port, got %q", v)
		return def
	}
	return v
}

// Bytes returns the variable as a size: a whole number of bytes with an
// optional unit, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB
// (powers of 1000), such as 512MiB or 8GiB; def when unset. Zero and
// negative sizes are refused.
func (l *Loader) Bytes(name string, def int64) int64 {
	v, ok := l.lookup(name)
	if !ok {
		return def
	}
	n, err := ParseBytes(v)
	if err != nil {
		l.fail(name, "%v", err)
		return def
	}
	return n
}

// ParseBytes reads a size as Loader.Bytes does.
func ParseBytes(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	s, mult := strings.TrimSpace(v), int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("want a positive size such as 512MiB or 8GiB, got %q", v)
	}
	return n * mult, nil
}

// Key32 returns the variable decoded from base64, which must be 32 bytes
// (an AES-256 key). It records an error when the variable is unset.
func (l *Loader) Key32(name string) []byte {
	v, ok := l.lookup(name)
	if !ok {
		l.fail(name, "is required (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)")
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) != 32 {
		l.fail(name, "want base64 of exactly 32 bytes")
		return nil
	}
	return b
}

// Key32List returns the variable as a comma-separated list of base64 keys of
// 32 bytes each; unset is none.
func (l *Loader) Key32List(name string) [][]byte {
	v, ok := l.lookup(name)
	if !ok {
		return nil
	}
	var keys [][]byte
	for i, item := range strings.Split(v, ",") {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(item))
		if err != nil || len(b) != 32 {
			l.fail(name, "key %d: want base64 of exactly 32 bytes", i+1)
			return nil
		}
		keys = append(keys, b)
	}
	return keys
}

// OneOf returns the variable, or def when unset, checking it is one of
// allowed.
func (l *Loader) OneOf(name, def string, allowed ...string) string {
	v := l.String(name, def)
	if !contains(allowed, v) {
		l.fail(name, "want one of %s, got %q", strings.Join(allowed, ", "), v)
		return def
	}
	return v
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// LogLevel returns LOG_LEVEL (debug, info, warn or error), info when unset.
func (l *Loader) LogLevel() slog.Level {
	v, ok := l.lookup("LOG_LEVEL")
	if !ok {
		return slog.LevelInfo
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(v)); err != nil {
		l.fail("LOG_LEVEL", "want debug, info, warn or error, got %q", v)
		return slog.LevelInfo
	}
	return level
}

// File returns the variable, the path of a file that must be readable, or
// "" when unset.
func (l *Loader) File(name string) string {
	v, ok := l.lookup(name)
	if !ok {
		return ""
	}
	f, err := os.Open(v)
	if err != nil {
		l.fail(name, "cannot read %s: %v", v, errors.Unwrap(err))
		return ""
	}
	_ = f.Close()
	return v
}

// RedactURL returns a URL, or a comma-separated list of them, fit for a log
// or an error message: a password becomes "xxxxx", and so does a user with
// no password (NATS and Redis read it as a token). Anything that does not
// parse is redacted whole from its "@" on the left.
func RedactURL(v string) string {
	items := strings.Split(v, ",")
	for i, item := range items {
		item = strings.TrimSpace(item)
		u, err := url.Parse(item)
		if err != nil {
			if at := strings.LastIndex(item, "@"); at >= 0 {
				scheme, _, _ := strings.Cut(item, "://")
				if scheme == item {
					scheme = ""
				} else {
					scheme += "://"
				}
				item = scheme + "xxxxx" + item[at:]
			}
			items[i] = item
			continue
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			} else {
				u.User = url.User("xxxxx")
			}
		}
		items[i] = u.String()
	}
	return strings.Join(items, ",")
}

// NATS is how a process reaches NATS: the servers, and the identity and TLS
// it connects with (README, "Configuration"). pkg/natsconn connects with it.
type NATS struct {
	// URL is NATS_URL, one server or a comma-separated list.
	URL string
	// Creds is NATS_CREDS, a .creds file (user JWT and seed).
	Creds string
	// NKey is NATS_NKEY, a file holding a user's NKEY seed.
	NKey string
	// TLSCA is NATS_TLS_CA, the CA bundle the server's certificate is
	// checked against (a private CA); TLSCert and TLSKey (NATS_TLS_CERT,
	// NATS_TLS_KEY) are a client certificate, for servers that verify one.
	TLSCA, TLSCert, TLSKey string
	// InboxPrefix is NATS_INBOX_PREFIX: where replies come, for a user that
	// may only listen on its own inboxes (a store's credentials).
	InboxPrefix string
}

// LoadNATS reads NATS_URL, NATS_CREDS, NATS_NKEY and the NATS_TLS_*
// variables; files must be readable.
func (l *Loader) LoadNATS() NATS {
	n := NATS{
		URL:     l.URL("NATS_URL", DefaultNATSURL, "nats", "tls", "ws", "wss"),
		Creds:   l.File("NATS_CREDS"),
		NKey:    l.File("NATS_NKEY"),
		TLSCA:   l.File("NATS_TLS_CA"),
		TLSCert: l.File("NATS_TLS_CERT"),
		TLSKey:  l.File("NATS_TLS_KEY"),

		InboxPrefix: l.String("NATS_INBOX_PREFIX", ""),
	}
	if n.Creds != "" && n.NKey != "" {
		l.fail("NATS_NKEY", "set NATS_CREDS or NATS_NKEY, not both")
	}
	if (n.TLSCert == "") != (n.TLSKey == "") {
		l.fail("NATS_TLS_CERT", "NATS_TLS_CERT and NATS_TLS_KEY go together")
	}
	return n
}

// Common is the configuration every service shares.
type Common struct {
	NATS            NATS
	RedisURL        string
	HiperBaseURL    string
	TokenBrokerAddr string
	// TokenBrokerTLS is TOKEN_BROKER_TLS_CA, _CERT and _KEY: the CA of
	// token-broker's certificate and this process's client certificate.
	TokenBrokerTLS tlsfiles.Files
	// Insecure is HIPERSYNC_INSECURE: call token-broker without TLS.
	Insecure     bool
	HTTPAddr     string
	EventsFormat string
	Namespace    string
	// StreamReplicas is HIPERSYNC_STREAM_REPLICAS: copies a NATS cluster
	// keeps of every stream and bucket.
	StreamReplicas int
	// LogLevel is LOG_LEVEL.
	LogLevel slog.Level
	// Stream limits (HIPERSYNC_STREAM_MAX_AGE, HIPERSYNC_STORE_MAX_BYTES,
	// HIPERSYNC_HIPER_MAX_BYTES, HIPERSYNC_DEADLETTER_MAX_AGE,
	// HIPERSYNC_DEADLETTER_MAX_BYTES, HIPERSYNC_BUCKET_MAX_BYTES,
	// HIPERSYNC_AUDIT_MAX_BYTES).
	StreamMaxAge       time.Duration
	StoreMaxBytes      int64
	HiperMaxBytes      int64
	DeadLetterMaxAge   time.Duration
	DeadLetterMaxBytes int64
	BucketMaxBytes     int64
	AuditMaxBytes      int64
}

func (l *Loader) loadBrokerTLS() tlsfiles.Files {
	f := tlsfiles.Files{CA: l.File("TOKEN_BROKER_TLS_CA"), Cert: l.File("TOKEN_BROKER_TLS_CERT"), Key: l.File("TOKEN_BROKER_TLS_KEY")}
	if (f.Cert == "") != (f.Key == "") {
		l.fail("TOKEN_BROKER_TLS_CERT", "TOKEN_BROKER_TLS_CERT and TOKEN_BROKER_TLS_KEY go together")
	}
	return f
}

// CheckBrokerTLS refuses a service that would call token-broker without
// TLS, unless HIPERSYNC_INSECURE is set (dev runs and tests).
func (c Common) CheckBrokerTLS() error {
	if c.TokenBrokerTLS.Cert == "" && !c.Insecure {
		return fmt.Errorf("TOKEN_BROKER_TLS_CERT: token-broker is called only over mutual TLS: set TOKEN_BROKER_TLS_CA, TOKEN_BROKER_TLS_CERT and TOKEN_BROKER_TLS_KEY (or %s=1 for a dev run)", InsecureEnv)
	}
	return nil
}

// LoadCommon reads the shared variables into a Common.
func (l *Loader) LoadCommon() Common {
	c := l.loadCommon()
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		l.fail("HIPERSYNC_STREAM_REPLICAS", "want 1 to 5 copies (3 on a three-node NATS cluster), got %d", c.StreamReplicas)
		c.StreamReplicas = 1
	}
	return c
}

func (l *Loader) loadCommon() Common {
	return Common{
		NATS:            l.LoadNATS(),
		RedisURL:        l.URL("REDIS_URL", DefaultRedisURL, "redis", "rediss"),
		HiperBaseURL:    l.URL("HIPER_BASE_URL", DefaultHiperBaseURL, "http", "https"),
		TokenBrokerAddr: l.Addr("TOKEN_BROKER_ADDR", DefaultTokenBrokerAddr),
		TokenBrokerTLS:  l.loadBrokerTLS(),
		Insecure:        l.Bool(InsecureEnv, false),
		HTTPAddr:        l.Addr("HTTP_ADDR", DefaultHTTPAddr),
		EventsFormat:    l.OneOf("EVENTS_FORMAT", "protobuf", "protobuf", "json"),
		Namespace:       l.String("HIPERSYNC_NAMESPACE", ""),
		StreamReplicas:  l.Int("HIPERSYNC_STREAM_REPLICAS", 1),
		LogLevel:        l.LogLevel(),

		StreamMaxAge:       l.Duration("HIPERSYNC_STREAM_MAX_AGE", DefaultStreamMaxAge),
		StoreMaxBytes:      l.Bytes("HIPERSYNC_STORE_MAX_BYTES", DefaultStoreMaxBytes),
		HiperMaxBytes:      l.Bytes("HIPERSYNC_HIPER_MAX_BYTES", DefaultHiperMaxBytes),
		DeadLetterMaxAge:   l.Duration("HIPERSYNC_DEADLETTER_MAX_AGE", DefaultDeadLetterMaxAge),
		DeadLetterMaxBytes: l.Bytes("HIPERSYNC_DEADLETTER_MAX_BYTES", DefaultDeadLetterMaxBytes),
		BucketMaxBytes:     l.Bytes("HIPERSYNC_BUCKET_MAX_BYTES", DefaultBucketMaxBytes),
		AuditMaxBytes:      l.Bytes("HIPERSYNC_AUDIT_MAX_BYTES", DefaultAuditMaxBytes),
	}
}

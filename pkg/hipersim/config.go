package hipersim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DemoKey is the security key of the demo account, used when Config.Keys is
// empty. It is public on purpose: the one-command demo prints it.
const DemoKey = "a757aa3df3ab8ccf392ae9929cb781d3978cf054b33ffb08501ae9d84e0688f6"

// Seeds: what a new account's catalog starts with.
const (
	SeedDemo  = "demo"  // a realistic catalog with variations (see seed.go)
	SeedEmpty = "empty" // no products
)

// Defaults of Config.
const (
	DefaultTokenTTL        = 6 * time.Hour
	DefaultBatch           = 500
	DefaultProcessingDelay = time.Second
)

// Config configures a Sim. The zero Config is a demo account with Hiper's
// defaults.
type Config struct {
	// Keys are the valid security keys (64 hex characters), one account
	// each; empty means []string{DemoKey}.
	Keys []string
	// Seed is SeedDemo (the default) or SeedEmpty.
	Seed string
	// TokenTTL is the lifetime of a token; 0 means DefaultTokenTTL.
	TokenTTL time.Duration
	// Batch is the most products one feed answer carries; 0 means
	// DefaultBatch.
	Batch int
	// ProcessingDelay is how long a new order stays in situation 1 before it
	// is processed. 0 means DefaultProcessingDelay; negative means at once.
	ProcessingDelay time.Duration
	// Now is the clock; nil means time.Now. Tests inject one to expire
	// tokens and process orders without sleeping.
	Now func() time.Time
	// OnToken, if set, is called with each token as it is issued, before
	// it is answered: a test learns every token Hiper gave out, one that
	// never reached a caller too. It must return quickly.
	OnToken func(IssuedToken)
}

// IssuedToken is a token as Config.OnToken is told of it.
type IssuedToken struct {
	Key     string    // the security key it was issued for
	Token   string    // the JWT
	Expires time.Time // when the Sim stops accepting it
}

// Environment variables read by ConfigFromEnv.
const (
	EnvKeys            = "HIPER_SIM_KEYS"
	EnvSeed            = "HIPER_SIM_SEED"
	EnvTokenTTL        = "HIPER_SIM_TOKEN_TTL"
	EnvBatch           = "HIPER_SIM_BATCH"
	EnvProcessingDelay = "HIPER_SIM_PROCESSING_DELAY"
)

// ConfigFromEnv reads a Config from HIPER_SIM_KEYS (comma-separated),
// HIPER_SIM_SEED, HIPER_SIM_TOKEN_TTL, HIPER_SIM_BATCH and
// HIPER_SIM_PROCESSING_DELAY (Go durations). Unset variables keep their
// defaults. HIPER_SIM_PROCESSING_DELAY=0 means "process at once", unlike a
// zero Config.ProcessingDelay, because an operator who writes 0 means it.
// A malformed variable is an error naming it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var cfg Config
	if v := strings.TrimSpace(getenv(EnvKeys)); v != "" {
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				cfg.Keys = append(cfg.Keys, k)
			}
		}
		if len(cfg.Keys) == 0 {
			return Config{}, fmt.Errorf("%s: %q lists no key", EnvKeys, v)
		}
		if err := validateKeys(cfg.Keys); err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvKeys, err)
		}
	}
	if v := strings.TrimSpace(getenv(EnvSeed)); v != "" {
		if v != SeedDemo && v != SeedEmpty {
			return Config{}, fmt.Errorf("%s: %q is neither %q nor %q", EnvSeed, v, SeedDemo, SeedEmpty)
		}
		cfg.Seed = v
	}
	if v := strings.TrimSpace(getenv(EnvTokenTTL)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("%s: %q is not a positive duration such as 6h", EnvTokenTTL, v)
		}
		cfg.TokenTTL = d
	}
	if v := strings.TrimSpace(getenv(EnvBatch)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return Config{}, fmt.Errorf("%s: %q is not a positive whole number", EnvBatch, v)
		}
		cfg.Batch = n
	}
	if v := strings.TrimSpace(getenv(EnvProcessingDelay)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return Config{}, fmt.Errorf("%s: %q is not a duration such as 1s or 0", EnvProcessingDelay, v)
		}
		if d == 0 {
			d = -1 // at once; 0 in Config means the default
		}
		cfg.ProcessingDelay = d
	}
	return cfg, nil
}

// withDefaults validates cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Keys) == 0 {
		cfg.Keys = []string{DemoKey}
	}
	if err := validateKeys(cfg.Keys); err != nil {
		return Config{}, fmt.Errorf("config keys: %w", err)
	}
	cfg.Keys = append([]string(nil), cfg.Keys...)
	switch cfg.Seed {
	case "":
		cfg.Seed = SeedDemo
	case SeedDemo, SeedEmpty:
	default:
		return Config{}, fmt.Errorf("config seed: %q is neither %q nor %q", cfg.Seed, SeedDemo, SeedEmpty)
	}
	switch {
	case cfg.TokenTTL == 0:
		cfg.TokenTTL = DefaultTokenTTL
	case cfg.TokenTTL < 0:
		return Config{}, fmt.Errorf("config token TTL: %v is negative", cfg.TokenTTL)
	}
	switch {
	case cfg.Batch == 0:
		cfg.Batch = DefaultBatch
	case cfg.Batch < 0:
		return Config{}, fmt.Errorf("config batch: %d is negative", cfg.Batch)
	}
	switch {
	case cfg.ProcessingDelay == 0:
		cfg.ProcessingDelay = DefaultProcessingDelay
	case cfg.ProcessingDelay < 0:
		cfg.ProcessingDelay = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}

// validateKeys rejects malformed and repeated keys. Messages never quote a
// key: they end up in logs.
func validateKeys(keys []string) error {
	seen := make(map[string]int, len(keys))
	for i, k := range keys {
		if !validKey(k) {
			return fmt.Errorf("key %d is not 64 hexadecimal characters", i+1)
		}
		if j, dup := seen[k]; dup {
			return fmt.Errorf("key %d repeats key %d", i+1, j+1)
		}
		seen[k] = i
	}
	return nil
}

// validKey reports whether k has the shape of a Hiper security key.
func validKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isHex(k[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

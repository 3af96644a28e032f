package watcher

import (
	"fmt"
	"time"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
)

// Config tunes the watcher. The zero value of a field means its default;
// each has an environment variable (README, "Invoices, shipping,
// cancellations").
type Config struct {
	// Schedule is how often an order is polled: Min while its answer is
	// fresh (INVOICE_POLL_MIN, default 30s), backing off to Expect while
	// its invoice is expected (INVOICE_POLL_EXPECT, default 100s; for
	// INVOICE_EXPECT_FOR after acceptance, default 72h), else to Max
	// (INVOICE_POLL_MAX, default 5m).
	Schedule order.Schedule
	// CancelGrace is how long a cancellation the store did not ask for
	// waits before it is announced as the merchant's (INVOICE_CANCEL_GRACE,
	// default 30s).
	CancelGrace time.Duration
	// Concurrency bounds the orders one replica polls at once, all tenants
	// together: its limit towards Hiper (INVOICE_CONCURRENCY, default 32).
	Concurrency int
	// TenantRate and TenantBurst pace one replica's calls for one tenant:
	// calls a second, and how many may go at once after a quiet spell
	// (INVOICE_TENANT_RATE, default 5; INVOICE_TENANT_BURST, default 10).
	// An order due beyond them books the tenant's next free call.
	TenantRate  float64
	TenantBurst int
	// PausedRetry is how often the orders of a paused or disconnected
	// tenant look again (INVOICE_PAUSED_RETRY, default 1m).
	PausedRetry time.Duration
	// RetryDelay is the wait after a failure worth retrying (a 5xx, a
	// timeout, token-broker unreachable) when Hiper names none
	// (INVOICE_RETRY_DELAY, default 30s).
	RetryDelay time.Duration
	// HiperTimeout bounds one Hiper call (INVOICE_HIPER_TIMEOUT, default
	// 15s).
	HiperTimeout time.Duration
	// AckWait is how long a replica that stopped answering keeps its orders
	// before another polls them (INVOICE_ACK_WAIT, default 30s).
	AckWait time.Duration
	// RecordTTL is how long the record of an order no longer followed is
	// kept, making late duplicates of its events harmless
	// (INVOICE_RECORD_TTL, default 2160h: 90 days).
	RecordTTL time.Duration
	// GracePeriod is how long a stopping replica lets polls in progress
	// finish (default events.DefaultGracePeriod).
	GracePeriod time.Duration
	// MaxAge, when set, replaces every tenant's order-watch-max-age: tests
	// give up sooner than the settings allow.
	MaxAge time.Duration
}

// Defaults of Config.
const (
	DefaultCancelGrace  = order.DefaultCancelGrace
	DefaultConcurrency  = 32
	DefaultTenantRate   = 5.0
	DefaultTenantBurst  = 10
	DefaultPausedRetry  = time.Minute
	DefaultRetryDelay   = 30 * time.Second
	DefaultHiperTimeout = hiper.DefaultTimeout
	DefaultAckWait      = events.DefaultAckWait
	DefaultRecordTTL    = 90 * 24 * time.Hour
	// MaxPollCeiling bounds INVOICE_POLL_MAX.
	MaxPollCeiling = 5 * time.Minute
)

func (c Config) withDefaults() Config {
	c.Schedule = c.Schedule.WithDefaults()
	setD := config.Default[time.Duration]
	setD(&c.CancelGrace, DefaultCancelGrace)
	setD(&c.PausedRetry, DefaultPausedRetry)
	setD(&c.RetryDelay, DefaultRetryDelay)
	setD(&c.HiperTimeout, DefaultHiperTimeout)
	setD(&c.AckWait, DefaultAckWait)
	setD(&c.RecordTTL, DefaultRecordTTL)
	setD(&c.GracePeriod, events.DefaultGracePeriod)
	config.Default(&c.Concurrency, DefaultConcurrency)
	config.Default(&c.TenantRate, DefaultTenantRate)
	config.Default(&c.TenantBurst, DefaultTenantBurst)
	return c
}

// Settings is the invoice-watcher's configuration from the environment.
type Settings = service.Settings[Config]

// LoadSettings reads the environment; the error names every bad variable.
func LoadSettings(getenv config.Env) (Settings, error) {
	return service.LoadSettings(getenv, loadConfig)
}

// loadConfig reads the invoice-watcher's own variables.
func loadConfig(l *config.Loader, _ config.Common) (Config, error) {
	c := Config{
		Schedule: order.Schedule{
			Min: l.Duration("INVOICE_POLL_MIN", order.DefaultMinInterval),
			Max: l.Duration("INVOICE_POLL_MAX", order.DefaultMaxInterval),
			// Unset (0), it is 100s or INVOICE_POLL_MAX if shorter.
			Expect:    l.Duration("INVOICE_POLL_EXPECT", 0),
			ExpectFor: l.Duration("INVOICE_EXPECT_FOR", order.DefaultExpectFor),
		},
		CancelGrace:  l.Duration("INVOICE_CANCEL_GRACE", DefaultCancelGrace),
		Concurrency:  l.Int("INVOICE_CONCURRENCY", DefaultConcurrency),
		TenantRate:   l.Float("INVOICE_TENANT_RATE", DefaultTenantRate),
		TenantBurst:  l.Int("INVOICE_TENANT_BURST", DefaultTenantBurst),
		PausedRetry:  l.Duration("INVOICE_PAUSED_RETRY", DefaultPausedRetry),
		RetryDelay:   l.Duration("INVOICE_RETRY_DELAY", DefaultRetryDelay),
		HiperTimeout: l.Duration("INVOICE_HIPER_TIMEOUT", DefaultHiperTimeout),
		AckWait:      l.Duration("INVOICE_ACK_WAIT", DefaultAckWait),
		RecordTTL:    l.Duration("INVOICE_RECORD_TTL", DefaultRecordTTL),
	}
	if sch := c.Schedule; sch.Max > MaxPollCeiling {
		return c, fmt.Errorf("INVOICE_POLL_MAX: at most %s, got %s: a change in Hiper must reach the store in minutes", MaxPollCeiling, sch.Max)
	} else if sch.Min > sch.Max {
		return c, fmt.Errorf("INVOICE_POLL_MIN: %s is longer than INVOICE_POLL_MAX (%s)", sch.Min, sch.Max)
	} else if sch.Expect > 0 && (sch.Expect < sch.Min || sch.Expect > sch.Max) {
		return c, fmt.Errorf("INVOICE_POLL_EXPECT: %s is not between INVOICE_POLL_MIN (%s) and INVOICE_POLL_MAX (%s)", sch.Expect, sch.Min, sch.Max)
	}
	return c, nil
}

package forwarder

import (
	"errors"
	"fmt"
	"time"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// Config tunes the forwarder. The zero value of a field means its default;
// each has an environment variable (README, "Orders").
type Config struct {
	// Concurrency is how many order events one replica handles at once
	// (ORDER_CONCURRENCY, default 64), those waiting for their tenant's
	// slot included. The slots (TenantInflight), not this, bound the calls
	// to Hiper; the events waiting for a slot are what keep it busy, so a
	// replica needs a few for each tenant with orders. Each costs a
	// goroutine and its approval.
	Concurrency int
	// TenantInflight is how many sales orders one replica posts at once for
	// one tenant (ORDER_TENANT_INFLIGHT, default 1). Each order being posted
	// is one whose outcome a crash would make unknown, so 1 keeps that to one
	// order per tenant per crash. A store whose orders outgrow one at a time
	// (Hiper's latency × its orders a second > 1) needs more. Other tenants
	// are not held up by a busy one.
	TenantInflight int
	// TenantRate paces one replica's creates and cancellations for one
	// tenant, in calls a second, with bursts of tenantBurst or
	// TenantInflight if more (ORDER_TENANT_RATE, default 50): Hiper publishes no rate limit, so
	// hipersync paces itself per tenant (hiper-api.md) whatever
	// TenantInflight allows. Negative: unpaced (benchmarks of the
	// forwarder's own cost).
	TenantRate float64
	// MaxAttempts bounds the tries of an order that fail before reaching
	// Hiper (503, 429, connection refused, token-broker unavailable); then
	// it fails with order.failed and a dead letter (ORDER_MAX_ATTEMPTS,
	// default 10). A paused tenant's wait does not count.
	MaxAttempts int
	// RetryBase and RetryMax shape the backoff between attempts: RetryBase
	// doubled per attempt up to RetryMax, with jitter (ORDER_RETRY_BASE 1s,
	// ORDER_RETRY_MAX 1m).
	RetryBase, RetryMax time.Duration
	// PausedRetry is how often an order of a paused tenant looks again
	// (ORDER_PAUSED_RETRY, default 30s).
	PausedRetry time.Duration
	// HiperTimeout bounds one Hiper call (ORDER_HIPER_TIMEOUT, default 15s).
	HiperTimeout time.Duration
	// AckWait is how long a replica that stopped answering keeps its
	// messages before another gets them (ORDER_ACK_WAIT, default 30s).
	AckWait time.Duration
	// MaxAckPending bounds the unacknowledged order events across replicas,
	// waiting ones included (ORDER_MAX_ACK_PENDING, default 20000).
	MaxAckPending int
	// GracePeriod is how long a stopping replica lets handlers finish.
	GracePeriod time.Duration
	// testLease, when set, replaces the lease derived from HiperTimeout.
	testLease time.Duration
	// CircuitThreshold is how many failures of Hiper in a row open a
	// circuit (the create endpoint's, or one tenant's): then orders wait
	// without spending attempts, and one probe at a time tests Hiper
	// (ORDER_CIRCUIT_THRESHOLD, default 3).
	CircuitThreshold int
	// CircuitProbeBase and CircuitProbeMax space the probes of an open
	// circuit: base, doubling after each failed probe, up to max
	// (ORDER_CIRCUIT_PROBE_BASE 5s, ORDER_CIRCUIT_PROBE_MAX 1m).
	CircuitProbeBase, CircuitProbeMax time.Duration
	// MaxErrors is how many times in a row an order event may fail with
	// the same kind of error that is no deliberate wait (the order bucket
	// failing, a record that cannot be written, a bug) before it ends as a
	// dead letter (repeated_error) and, for an order not yet settled,
	// order.failed (ORDER_MAX_ERRORS, default 10).
	MaxErrors int
	// PersonalDataRetention is how long a settled order keeps the
	// customer's document, e-mail and addresses before they are dropped
	// from its record (ORDER_PERSONAL_DATA_RETENTION, default 90 days).
	PersonalDataRetention time.Duration
}

// Defaults of Config.
const (
	DefaultConcurrency    = 64
	DefaultTenantInflight = 1
	DefaultTenantRate     = 50.0
	// tenantBurst is how many calls of a tenant may go back to back
	// before TenantRate spaces them.
	tenantBurst          = 10
	DefaultMaxAttempts   = 10
	DefaultRetryBase     = time.Second
	DefaultRetryMax      = time.Minute
	DefaultPausedRetry   = 30 * time.Second
	DefaultHiperTimeout  = hiper.DefaultTimeout
	DefaultAckWait       = events.DefaultAckWait
	DefaultMaxAckPending = 20000

	DefaultMaxErrors        = 10
	DefaultCircuitThreshold = 3
	DefaultCircuitProbeBase = 5 * time.Second
	DefaultCircuitProbeMax  = time.Minute
)

func (c Config) withDefaults() Config {
	def, defD := config.Default[int], config.Default[time.Duration]
	def(&c.Concurrency, DefaultConcurrency)
	def(&c.TenantInflight, DefaultTenantInflight)
	if c.TenantRate == 0 {
		c.TenantRate = DefaultTenantRate
	}
	def(&c.MaxAttempts, DefaultMaxAttempts)
	def(&c.MaxAckPending, DefaultMaxAckPending)
	defD(&c.RetryBase, DefaultRetryBase)
	defD(&c.RetryMax, DefaultRetryMax)
	defD(&c.PausedRetry, DefaultPausedRetry)
	defD(&c.HiperTimeout, DefaultHiperTimeout)
	defD(&c.AckWait, DefaultAckWait)
	defD(&c.GracePeriod, events.DefaultGracePeriod)
	def(&c.CircuitThreshold, DefaultCircuitThreshold)
	def(&c.MaxErrors, DefaultMaxErrors)
	defD(&c.CircuitProbeBase, DefaultCircuitProbeBase)
	defD(&c.CircuitProbeMax, DefaultCircuitProbeMax)
	defD(&c.PersonalDataRetention, orders.DefaultPersonalDataRetention)
	if c.CircuitProbeMax < c.CircuitProbeBase {
		c.CircuitProbeMax = c.CircuitProbeBase
	}
	if c.RetryMax < c.RetryBase {
		c.RetryMax = c.RetryBase
	}
	return c
}

// tokenTimeout bounds getting a token from token-broker, which may have to
// ask Hiper for it.
func (c Config) tokenTimeout() time.Duration { return c.HiperTimeout }

// callBudget bounds a call to Hiper through a session: a second token after
// a 401, and the call itself.
func (c Config) callBudget() time.Duration { return c.tokenTimeout() + c.HiperTimeout }

// recordBudget is the time left to record Hiper's answer once the call's
// budget is spent.
func (c Config) recordBudget() time.Duration { return max(2*time.Second, c.HiperTimeout/2) }

// lease is how long a replica may hold an order in sending or cancelling:
// the call's budget plus time to record the answer. Only after it has
// passed is a replica taken for dead.
func (c Config) lease() time.Duration {
	if c.testLease > 0 {
		return c.testLease
	}
	return c.callBudget() + c.recordBudget()
}

// callWindow is how long a call to Hiper may take on a lease that runs
// until leaseUntil: up to the lease written less the time to record the
// answer, by this replica's clock, and never more than the call's budget.
// So whatever the write of the lease cost, no other replica can take the
// lease for dead (and the order for needs_review) while the call may still
// complete. Zero or less: the lease is spent, do not call.
func (c Config) callWindow(leaseUntil, now time.Time) time.Duration {
	return min(leaseUntil.Add(-c.recordBudget()).Sub(now), c.callBudget())
}

// StopTime is the longest a stopping replica takes before its NATS
// connection drains: handlers get the drain's grace period, and a Hiper call
// that started just before its end is seen through its budget and recorded
// (Run waits for it). A pod's terminationGracePeriodSeconds must leave room
// for it, or a slow Hiper during a rollout kills calls whose answers are
// then unknown, and their orders wait for a person (needs_review). The
// manifest test in deploy/ derives the pod's grace from it.
func StopTime(c Config) time.Duration {
	c = c.withDefaults()
	return c.GracePeriod + c.lease()
}

// loadConfig reads the order-forwarder's own variables (Main reads them
// with the shared ones: service.LoadSettings).
func loadConfig(l *config.Loader, common config.Common) (Config, error) {
	c := Config{
		Concurrency:    l.Int("ORDER_CONCURRENCY", DefaultConcurrency),
		TenantInflight: l.Int("ORDER_TENANT_INFLIGHT", DefaultTenantInflight),
		TenantRate:     l.Float("ORDER_TENANT_RATE", DefaultTenantRate),
		MaxAttempts:    l.Int("ORDER_MAX_ATTEMPTS", DefaultMaxAttempts),
		RetryBase:      l.Duration("ORDER_RETRY_BASE", DefaultRetryBase),
		RetryMax:       l.Duration("ORDER_RETRY_MAX", DefaultRetryMax),
		PausedRetry:    l.Duration("ORDER_PAUSED_RETRY", DefaultPausedRetry),
		HiperTimeout:   l.Duration("ORDER_HIPER_TIMEOUT", DefaultHiperTimeout),
		AckWait:        l.Duration("ORDER_ACK_WAIT", DefaultAckWait),
		MaxAckPending:  l.Int("ORDER_MAX_ACK_PENDING", DefaultMaxAckPending),

		MaxErrors:        l.Int("ORDER_MAX_ERRORS", DefaultMaxErrors),
		CircuitThreshold: l.Int("ORDER_CIRCUIT_THRESHOLD", DefaultCircuitThreshold),
		CircuitProbeBase: l.Duration("ORDER_CIRCUIT_PROBE_BASE", DefaultCircuitProbeBase),
		CircuitProbeMax:  l.Duration("ORDER_CIRCUIT_PROBE_MAX", DefaultCircuitProbeMax),

		PersonalDataRetention: l.Duration("ORDER_PERSONAL_DATA_RETENTION", orders.DefaultPersonalDataRetention),
	}
	var errs []error
	for _, v := range []struct {
		name string
		n    int
	}{
		{"ORDER_CONCURRENCY", c.Concurrency}, {"ORDER_TENANT_INFLIGHT", c.TenantInflight},
		{"ORDER_MAX_ATTEMPTS", c.MaxAttempts}, {"ORDER_MAX_ACK_PENDING", c.MaxAckPending},
		{"ORDER_CIRCUIT_THRESHOLD", c.CircuitThreshold}, {"ORDER_MAX_ERRORS", c.MaxErrors},
	} {
		if v.n < 1 {
			errs = append(errs, fmt.Errorf("%s: want a whole number of at least 1, got %d", v.name, v.n))
		}
	}
	if c.TenantRate <= 0 {
		errs = append(errs, fmt.Errorf("ORDER_TENANT_RATE: want a number of calls a second above 0, got %v", c.TenantRate))
	}
	if err := (events.Namespace{Prefix: common.Namespace, Replicas: common.StreamReplicas}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", events.NamespaceEnv, err))
	}
	return c, errors.Join(errs...)
}

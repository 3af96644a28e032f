package syncstatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/kvwatch"
)

// Kind is what a poller syncs.
type Kind string

const (
	Catalog Kind = "catalog"
	Stock   Kind = "stock"
)

// Kinds lists every kind of sync a poller runs.
var Kinds = []Kind{Catalog, Stock}

// Invoices is the kind under which the invoice-watcher reports how its
// follow-up of a tenant's orders goes. No poller runs it, so it is not in
// Kinds, and the schedulers ignore its records.
const Invoices Kind = "invoices"

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return slices.Contains(Kinds, k) }

// Buckets (before the namespace prefix) the schedule keeps its state in.
const (
	// StatusBucket holds one Status per tenant and kind, under StatusKey.
	StatusBucket = "sync_status"
	// RequestBucket holds the Request not yet served per tenant and kind,
	// under the same key.
	RequestBucket = "sync_requests"
)

// StatusKey is the key of a tenant's status (and request) of kind k:
// "<tenant>.<kind>".
func StatusKey(tenant string, k Kind) string { return tenant + "." + string(k) }

// ParseKey splits a StatusKey; ok is false when it names no known kind.
func ParseKey(key string) (string, Kind, bool) {
	i := strings.LastIndexByte(key, '.')
	if i <= 0 {
		return "", "", false
	}
	k := Kind(key[i+1:])
	return key[:i], k, k.Valid()
}

// Status is one tenant's sync of one kind, as the replicas share it: where
// the feed stopped, when the next run is due, how the last ones went, and
// who is running it now. Only the replica holding the lease writes it.
type Status struct {
	Tenant string `json:"tenant"`
	Kind   Kind   `json:"kind"`

	// Cursor is the sync point the next incremental poll sends: the last
	// one whose batch was fully handled. 0 only before the first batch.
	Cursor int64 `json:"cursor"`
	// InitialDone is set once the first full pass over the catalog
	// finished; until then the poll is the initial sync, which the
	// guardrail does not hold.
	InitialDone bool `json:"initialDone"`
	// FullCursor is how far a full resync in progress got (FullRunning);
	// a crash resumes it from there.
	FullCursor  int64 `json:"fullCursor,omitempty"`
	FullRunning bool  `json:"fullRunning,omitempty"`
	// Products is how many products the poller keeps state for: the base
	// of the guardrail's percentage.
	Products int64 `json:"products"`

	// TargetInterval is the interval the tenant is polled at: for
	// invoices, the ceiling of every order's interval.
	TargetInterval Duration `json:"targetInterval"`
	// ExpectInterval is, for invoices, the ceiling of the orders whose
	// invoice is expected: they are polled at least this often. Zero for
	// the other kinds.
	ExpectInterval Duration  `json:"expectInterval,omitempty"`
	NextRunAt      time.Time `json:"nextRunAt,omitzero"`
	LastRunAt      time.Time `json:"lastRunAt,omitzero"`
	// LastSuccessAt is the start of the last run that brought the store up
	// to date with Hiper; a held run does not.
	LastSuccessAt time.Time `json:"lastSuccessAt,omitzero"`
	LastFullAt    time.Time `json:"lastFullAt,omitzero"`
	LastError     string    `json:"lastError,omitempty"`
	LastErrorAt   time.Time `json:"lastErrorAt,omitzero"`
	// Failures counts the runs that failed in a row; it sets the backoff.
	Failures int `json:"failures,omitempty"`

	// ItemsPublished counts events published over the tenant's life,
	// LastPublished those of the last run.
	ItemsPublished int64 `json:"itemsPublished"`
	LastPublished  int64 `json:"lastPublished"`

	// LastRequest and LastRequestAt name the last Request a successful run
	// served.
	LastRequest   string    `json:"lastRequest,omitempty"`
	LastRequestAt time.Time `json:"lastRequestAt,omitzero"`

	// Held is set while the guardrail holds a mass change.
	Held *Held `json:"held,omitempty"`
	// Lease is set while a replica runs the sync.
	Lease *Lease `json:"lease,omitempty"`
}

// Held is a mass change the guardrail keeps from the store until an operator
// approves it (`hipersync sync <tenant> --approve`). The cursor stays where
// the held poll started, so the next polls see the change again, as Hiper
// then has it: if the ERP is put right, the hold lifts by itself.
type Held struct {
	Since time.Time `json:"since"`
	From  int64     `json:"from"`
	Full  bool      `json:"full,omitempty"`
	// Reset: the held run republishes the catalogue as created.
	Reset   bool             `json:"reset,omitempty"`
	Summary string           `json:"summary"`
	Counts  map[string]int64 `json:"counts"`
	// Plan fingerprints the held change, so that one change is announced
	// (catalog.guard.held) once however many polls see it.
	Plan string `json:"plan"`
}

// Lease says which replica runs the sync, until when at least.
type Lease struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

// Lag is how long ago the store was last brought up to date with Hiper
// (since the first run when it never was).
func (s Status) Lag(now time.Time) time.Duration {
	switch {
	case !s.LastSuccessAt.IsZero():
		return now.Sub(s.LastSuccessAt)
	case !s.LastRunAt.IsZero():
		return now.Sub(s.LastRunAt)
	}
	return 0
}

// Stale reports whether the store lags Hiper by more than two intervals.
func (s Status) Stale(now time.Time) bool {
	return s.TargetInterval > 0 && s.Lag(now) > 2*time.Duration(s.TargetInterval)
}

// Running reports whether a replica holds the lease at now.
func (s Status) Running(now time.Time) bool { return s.Lease != nil && s.Lease.Until.After(now) }

// Clone returns a copy of s that shares nothing with it.
func (s Status) Clone() Status {
	if s.Held != nil {
		h := *s.Held
		h.Counts = make(map[string]int64, len(s.Held.Counts))
		for k, v := range s.Held.Counts {
			h.Counts[k] = v
		}
		s.Held = &h
	}
	if s.Lease != nil {
		l := *s.Lease
		s.Lease = &l
	}
	return s
}

// Decode decodes a Status as stored.
func Decode(b []byte) (Status, error) {
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return Status{}, fmt.Errorf("decode sync status: %w", err)
	}
	return s, nil
}

// Duration is a time.Duration written in JSON as Go writes it ("5m0s").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("decode duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }

// EnsureBuckets creates the schedule's buckets of ns, or updates them to
// this configuration; every poller calls it at start.
func EnsureBuckets(ctx context.Context, js jetstream.JetStream, ns events.Namespace) (status, requests jetstream.KeyValue, err error) {
	status, err = events.EnsureKV(ctx, js, ns, StatusBucket,
		events.WithKVDescription("hipersync: <tenant>.<kind> → sync status (cursor, schedule, outcome, lease)"))
	if err != nil {
		return nil, nil, err
	}
	requests, err = events.EnsureKV(ctx, js, ns, RequestBucket,
		events.WithKVDescription("hipersync: <tenant>.<kind> → a sync asked for and not yet run"))
	if err != nil {
		return nil, nil, err
	}
	return status, requests, nil
}

// ListStatus returns every tenant's status, sorted by tenant then kind; none
// when no poller ever ran.
func ListStatus(ctx context.Context, js jetstream.JetStream, ns events.Namespace) ([]Status, error) {
	kv, err := js.KeyValue(ctx, ns.Bucket(StatusBucket))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list sync status: %w", err)
	}
	var out []Status
	err = kvwatch.ReadAll(ctx, kv, "list sync status", func(e jetstream.KeyValueEntry) error {
		s, err := Decode(e.Value())
		if err != nil {
			return fmt.Errorf("list sync status: %s: %w", e.Key(), err)
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Status) int {
		if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return strings.Compare(string(a.Kind), string(b.Kind))
	})
	return out, nil
}

// GetStatus returns one tenant's status of kind k; ok is false when that
// sync never ran.
func GetStatus(ctx context.Context, js jetstream.JetStream, ns events.Namespace, tenantID string, k Kind) (s Status, ok bool, err error) {
	// Each call is bounded and retried (events.Retry): the CLI shows
	// progress with this while it waits, and a request lost during a NATS
	// election must not hold the command for its whole deadline.
	var kv jetstream.KeyValue
	err = events.Retry(ctx, "open "+ns.Bucket(StatusBucket), func(ctx context.Context) error {
		kv, err = js.KeyValue(ctx, ns.Bucket(StatusBucket))
		return err
	})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return Status{}, false, nil
	}
	if err != nil {
		return Status{}, false, fmt.Errorf("get sync status: %w", err)
	}
	var e jetstream.KeyValueEntry
	err = events.Retry(ctx, "read "+StatusKey(tenantID, k), func(ctx context.Context) error {
		e, err = kv.Get(ctx, StatusKey(tenantID, k))
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Status{}, false, nil
	}
	if err != nil {
		return Status{}, false, fmt.Errorf("get sync status: %w", err)
	}
	s, err = Decode(e.Value())
	return s, err == nil, err
}

// UpdateStatus changes one tenant's status of kind k with compare-and-set on
// the record's revision (events.Update), for a service that reports into the
// store without a scheduler (the invoice-watcher).
func UpdateStatus(ctx context.Context, kv jetstream.KeyValue, tenantID string, k Kind, change func(*Status)) error {
	_, _, err := events.Update(ctx, kv, StatusKey(tenantID, k), statusCodec, func(st Status) (Status, error) {
		if st.Tenant == "" {
			st = Status{Tenant: tenantID, Kind: k}
		}
		change(&st)
		return st, nil
	})
	if err != nil {
		return fmt.Errorf("update sync status: %w", err)
	}
	return nil
}

// statusCodec is how a Status is stored.
var statusCodec = events.Codec[Status]{Encode: func(s Status) ([]byte, error) { return json.Marshal(s) }, Decode: Decode}

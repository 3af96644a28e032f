package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Registry is the tenant registry: one TenantRecord per tenant in the
// tenants bucket, changed only with compare-and-set on the entry's revision
// so two replicas never lose each other's writes.
type Registry struct {
	kv     jetstream.KeyValue
	dir    *tenant.Directory
	sealer *tenant.Sealer
	issuer Issuer
	log    *slog.Logger
	now    func() time.Time

	// onConnect primes the token cache with the token that validated a key,
	// asked for at asked; onLeave drops a tenant's tokens when it is paused
	// or disconnected.
	onConnect func(ctx context.Context, tenantID string, tok hiper.Token, asked time.Time)
	onLeave   func(ctx context.Context, tenantID string)
}

// NewRegistry returns a Registry over kv; dir must watch the same bucket.
func NewRegistry(kv jetstream.KeyValue, dir *tenant.Directory, sealer *tenant.Sealer, issuer Issuer, log *slog.Logger) *Registry {
	return &Registry{kv: kv, dir: dir, sealer: sealer, issuer: issuer, log: log, now: time.Now,
		onConnect: func(context.Context, string, hiper.Token, time.Time) {}, onLeave: func(context.Context, string) {}}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", tenant.ErrInvalid, fmt.Sprintf(format, args...))
}

func checkID(id string) error {
	if err := tenant.ValidID(id); err != nil {
		return fmt.Errorf("%w: %v", tenant.ErrInvalid, err)
	}
	return nil
}

// update applies change to the tenant's record under compare-and-set
// (events.Update), retrying when another writer got there first. A missing
// tenant is created (not connected) when create is set, and is ErrUnknown
// otherwise. change returns events.ErrNoChange to write nothing.
func (r *Registry) update(ctx context.Context, id string, create bool, change func(*brokerv1.TenantRecord) error) (*brokerv1.TenantRecord, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	rec, _, err := events.Update(ctx, r.kv, id, recordCodec, func(rec *brokerv1.TenantRecord) (*brokerv1.TenantRecord, error) {
		switch {
		case rec == nil && create:
			rec = &brokerv1.TenantRecord{Tenant: &brokerv1.Tenant{
				TenantId: id, State: brokerv1.TenantState_TENANT_STATE_NOT_CONNECTED,
				StateChangedAt: timestamppb.New(r.now()), Settings: &brokerv1.TenantSettings{},
			}}
		case rec == nil:
			return nil, unknown(id)
		}
		before := rec.GetTenant().GetState()
		if err := change(rec); err != nil {
			return rec, err
		}
		if rec.GetTenant().GetState() != before {
			rec.Tenant.StateChangedAt = timestamppb.New(r.now())
		}
		return rec, nil
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// recordCodec is how a tenant record is stored.
var recordCodec = events.Codec[*brokerv1.TenantRecord]{Encode: tenant.EncodeRecord, Decode: decodeRecord}

func decodeRecord(b []byte) (*brokerv1.TenantRecord, error) {
	rec, err := tenant.DecodeRecord(b)
	if err != nil {
		return nil, err
	}
	if rec.Tenant.Settings == nil {
		rec.Tenant.Settings = &brokerv1.TenantSettings{}
	}
	return rec, nil
}

func unknown(id string) error {
	return fmt.Errorf("%w: %s; connect it with `hipersync tenant connect %s --key-file FILE`", tenant.ErrUnknown, id, id)
}

// read returns the stored record and its revision, or ErrUnknown.
func (r *Registry) read(ctx context.Context, id string) (*brokerv1.TenantRecord, uint64, error) {
	rec, rev, found, err := events.Get(ctx, r.kv, id, recordCodec)
	if err != nil {
		return nil, 0, fmt.Errorf("read tenant: %w", err)
	}
	if !found {
		return nil, 0, unknown(id)
	}
	return rec, rev, nil
}

// Connect validates key by asking Hiper for a token and, when Hiper accepts
// it, stores it sealed and makes the tenant active. A refused key is never
// stored. A tenant that has a key (active or paused) keeps it and its state:
// a mistyped new key must not stop a working store. One without (new,
// not_connected, invalid_key) is marked invalid_key. Either way
// ErrInvalidKey is returned, saying which.
func (r *Registry) Connect(ctx context.Context, id, key string) (*brokerv1.Tenant, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	key = strings.TrimSpace(key)
	asked := r.now()
	tok, err := r.issuer.Token(ctx, key)
	if errors.Is(err, hiper.ErrInvalidKey) {
		reason := "Hiper refused the security key: " + err.Error()
		why := tenant.KeyRefusedReason(false, err)
		var kept *brokerv1.Tenant
		if _, uerr := r.update(ctx, id, true, func(rec *brokerv1.TenantRecord) error {
			if len(rec.GetSealedKey()) > 0 {
				kept = rec.GetTenant()
				return events.ErrNoChange
			}
			rec.SealedKey, rec.KeyVersion = nil, 0
			rec.Tenant.State = brokerv1.TenantState_TENANT_STATE_INVALID_KEY
			setReason(rec.Tenant, why)
			return nil
		}); uerr != nil {
			return nil, uerr
		}
		if kept != nil {
			r.log.WarnContext(ctx, "new security key refused; the tenant keeps its key", "tenant", id)
			return nil, fmt.Errorf("%w: %s; %s keeps its current key and stays %s", tenant.ErrInvalidKey, reason, id,
				tenant.StateName(kept.GetState()))
		}
		r.onLeave(ctx, id)
		return nil, fmt.Errorf("%w: %s", tenant.ErrInvalidKey, reason)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: validate the key: %v", tenant.ErrHiperUnavailable, err)
	}
	sealed, err := r.sealer.Seal(id, key)
	if err != nil {
		return nil, err
	}
	rec, err := r.update(ctx, id, true, func(rec *brokerv1.TenantRecord) error {
		rec.SealedKey, rec.KeyVersion = sealed, tenant.KeyVersion
		rec.Tenant.State = brokerv1.TenantState_TENANT_STATE_ACTIVE
		setReason(rec.Tenant, tenant.StateReason{})
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.onConnect(ctx, id, tok, asked)
	r.log.InfoContext(ctx, "tenant connected", "tenant", id)
	return rec.GetTenant(), nil
}

// Pause stops syncing a connected tenant; its key is kept.
func (r *Registry) Pause(ctx context.Context, id string) (*brokerv1.Tenant, error) {
	rec, err := r.update(ctx, id, false, func(rec *brokerv1.TenantRecord) error {
		switch rec.GetTenant().GetState() {
		case brokerv1.TenantState_TENANT_STATE_ACTIVE, brokerv1.TenantState_TENANT_STATE_PAUSED:
			rec.Tenant.State = brokerv1.TenantState_TENANT_STATE_PAUSED
			setReason(rec.Tenant, tenant.PausedReason())
			return nil
		default:
			return fmt.Errorf("%w: %s is %s; only a connected tenant can be paused", tenant.ErrNotConnected, id, tenant.StateName(rec.GetTenant().GetState()))
		}
	})
	if err != nil {
		return nil, err
	}
	r.onLeave(ctx, id)
	r.log.InfoContext(ctx, "tenant paused", "tenant", id)
	return rec.GetTenant(), nil
}

// Resume restarts syncing a paused tenant.
func (r *Registry) Resume(ctx context.Context, id string) (*brokerv1.Tenant, error) {
	rec, err := r.update(ctx, id, false, func(rec *brokerv1.TenantRecord) error {
		switch rec.GetTenant().GetState() {
		case brokerv1.TenantState_TENANT_STATE_ACTIVE, brokerv1.TenantState_TENANT_STATE_PAUSED:
			rec.Tenant.State = brokerv1.TenantState_TENANT_STATE_ACTIVE
			setReason(rec.Tenant, tenant.StateReason{})
			return nil
		default:
			return fmt.Errorf("%w: %s is %s; connect it with a valid key instead", tenant.ErrNotConnected, id, tenant.StateName(rec.GetTenant().GetState()))
		}
	})
	if err != nil {
		return nil, err
	}
	r.log.InfoContext(ctx, "tenant resumed", "tenant", id)
	return rec.GetTenant(), nil
}

// Disconnect erases the tenant's key; its settings are kept for a later
// connect. Pollers stop as soon as they see the change.
func (r *Registry) Disconnect(ctx context.Context, id string) (*brokerv1.Tenant, error) {
	rec, err := r.update(ctx, id, false, func(rec *brokerv1.TenantRecord) error {
		rec.SealedKey, rec.KeyVersion = nil, 0
		rec.Tenant.State = brokerv1.TenantState_TENANT_STATE_NOT_CONNECTED
		setReason(rec.Tenant, tenant.DisconnectedReason())
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.onLeave(ctx, id)
	r.log.InfoContext(ctx, "tenant disconnected", "tenant", id)
	return rec.GetTenant(), nil
}

// setReason sets why t is in its state, for the merchant.
func setReason(t *brokerv1.Tenant, r tenant.StateReason) {
	t.StateReasonCode, t.StateReason = r.Code, r.Text
}

// MarkKeyRefused records that Hiper refused a stored key during a refresh.
func (r *Registry) MarkKeyRefused(ctx context.Context, id string, cause error) {
	_, err := r.update(ctx, id, false, func(rec *brokerv1.TenantRecord) error {
		rec.SealedKey, rec.KeyVersion = nil, 0
		rec.Tenant.State = brokerv1.TenantState_TENANT_STATE_INVALID_KEY
		setReason(rec.Tenant, tenant.KeyRefusedReason(true, cause))
		return nil
	})
	if err != nil {
		r.log.ErrorContext(ctx, "mark tenant key refused", "tenant", id, "err", err)
		return
	}
	r.log.WarnContext(ctx, "hiper refused a tenant's stored key", "tenant", id)
}

// UpdateSettings changes the settings fields named by mask (all of them when
// mask is empty). A tenant not yet connected may have settings.
func (r *Registry) UpdateSettings(ctx context.Context, id string, s *brokerv1.TenantSettings, mask *fieldmaskpb.FieldMask) (*brokerv1.Tenant, error) {
	if s == nil {
		s = &brokerv1.TenantSettings{}
	}
	if mask != nil {
		if err := validPaths(mask); err != nil {
			return nil, err
		}
	}
	rec, err := r.update(ctx, id, true, func(rec *brokerv1.TenantRecord) error {
		merged := proto.Clone(rec.GetTenant().GetSettings()).(*brokerv1.TenantSettings)
		if len(mask.GetPaths()) == 0 {
			merged = proto.Clone(s).(*brokerv1.TenantSettings)
		} else {
			src, dst := s.ProtoReflect(), merged.ProtoReflect()
			for _, p := range mask.GetPaths() {
				if field, key, ok := strings.Cut(p, "."); ok {
					// One entry of a map: set from s, or removed when s
					// lacks it (`--quote EUR=`).
					fd := dst.Descriptor().Fields().ByName(protoreflect.Name(field))
					mk := protoreflect.ValueOfString(key).MapKey()
					if v := src.Get(fd).Map(); v.Has(mk) {
						dst.Mutable(fd).Map().Set(mk, v.Get(mk))
					} else if dst.Has(fd) {
						dst.Mutable(fd).Map().Clear(mk)
					}
					continue
				}
				fd := dst.Descriptor().Fields().ByName(protoreflect.Name(p))
				if src.Has(fd) {
					dst.Set(fd, src.Get(fd))
				} else {
					dst.Clear(fd)
				}
			}
		}
		if err := tenant.Validate(merged); err != nil {
			return fmt.Errorf("%w: %v", tenant.ErrInvalid, err)
		}
		rec.Tenant.Settings = merged
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rec.GetTenant(), nil
}

func validPaths(mask *fieldmaskpb.FieldMask) error {
	fields := (&brokerv1.TenantSettings{}).ProtoReflect().Descriptor().Fields()
	for _, p := range mask.GetPaths() {
		field, key, entry := strings.Cut(p, ".")
		fd := fields.ByName(protoreflect.Name(field))
		if fd == nil {
			return invalid("unknown setting %q", p)
		}
		if entry && (!fd.IsMap() || fd.MapKey().Kind() != protoreflect.StringKind || key == "") {
			return invalid("setting %q: only a map's entries are named after a dot", p)
		}
	}
	return nil
}

// Get returns the stored tenant.
func (r *Registry) Get(ctx context.Context, id string) (*brokerv1.Tenant, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	rec, _, err := r.read(ctx, id)
	if err != nil {
		return nil, err
	}
	return rec.GetTenant(), nil
}

// List returns every stored tenant, sorted by id.
func (r *Registry) List(ctx context.Context) ([]*brokerv1.Tenant, error) {
	lister, err := r.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	var out []*brokerv1.Tenant
	for id := range lister.Keys() {
		rec, _, err := r.read(ctx, id)
		if errors.Is(err, tenant.ErrUnknown) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec.GetTenant())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetTenantId() < out[j].GetTenantId() })
	return out, nil
}

// Usable reports whether a tenant may have a token now, from the live
// directory; a tenant that looks unusable there is read again from the bucket,
// since the directory may not have seen a write made a moment ago.
func (r *Registry) Usable(ctx context.Context, id string) error {
	if state, ok := r.dir.State(id); ok && tenant.Syncs(state) {
		return nil
	}
	if err := checkID(id); err != nil {
		return err
	}
	rec, _, err := r.read(ctx, id)
	if err != nil {
		return err
	}
	return stateErr(rec.GetTenant())
}

func stateErr(t *brokerv1.Tenant) error {
	switch t.GetState() {
	case brokerv1.TenantState_TENANT_STATE_ACTIVE:
		return nil
	case brokerv1.TenantState_TENANT_STATE_PAUSED:
		return fmt.Errorf("%w: %s; resume it with `hipersync tenant resume %s`", tenant.ErrPaused, t.GetTenantId(), t.GetTenantId())
	case brokerv1.TenantState_TENANT_STATE_INVALID_KEY:
		return fmt.Errorf("%w: %s; connect it again with a valid key", tenant.ErrKeyRefused, t.GetTenantId())
	default:
		return fmt.Errorf("%w: %s; connect it with `hipersync tenant connect %s --key-file FILE`", tenant.ErrNotConnected, t.GetTenantId(), t.GetTenantId())
	}
}

// Reseal seals again, under the current master key, every stored key that
// a previous master key sealed, and returns how many it changed. Replicas
// may run it at once: each change is compare-and-set.
func (r *Registry) Reseal(ctx context.Context) (int, error) {
	lister, err := r.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list tenants: %w", err)
	}
	resealed := 0
	for id := range lister.Keys() {
		changed := false
		_, err := r.update(ctx, id, false, func(rec *brokerv1.TenantRecord) error {
			changed = false
			if len(rec.GetSealedKey()) == 0 {
				return events.ErrNoChange
			}
			key, stale, err := r.sealer.OpenStale(id, rec.GetSealedKey())
			if err != nil {
				return fmt.Errorf("open the key of %s with the current or a previous master key: %w", id, err)
			}
			if !stale {
				return events.ErrNoChange
			}
			if rec.SealedKey, err = r.sealer.Seal(id, key); err != nil {
				return err
			}
			changed = true
			return nil
		})
		if errors.Is(err, tenant.ErrUnknown) {
			continue // deleted since listed
		}
		if err != nil {
			return resealed, err
		}
		if changed {
			resealed++
		}
	}
	return resealed, nil
}

// Key returns an active tenant's security key, read from the bucket (never
// from a cache) so a disconnect takes effect at the next refresh.
func (r *Registry) Key(ctx context.Context, id string) (string, error) {
	rec, _, err := r.read(ctx, id)
	if err != nil {
		return "", err
	}
	if err := stateErr(rec.GetTenant()); err != nil {
		return "", err
	}
	return r.sealer.Open(id, rec.GetSealedKey())
}

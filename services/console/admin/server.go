// Package admin implements the admin API (hipersync.admin.v1.AdminService):
// the calls an operator, a store's support person or a store platform's
// backend makes. It reads and writes through the same packages the services
// and the CLI use (token-broker's TenantService for the registry,
// pkg/schedule and pkg/ops for syncs, the order-forwarder's orders bucket,
// pkg/events for the log and dead letters), checks the caller's role on
// every call, and writes every mutating call and every reveal of a
// customer's personal data to the audit log.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1/adminv1connect"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/natsauth"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// Deps is what the server works with.
type Deps struct {
	JS        jetstream.JetStream
	NS        events.Namespace
	Tenants   brokerv1.TenantServiceClient
	Publisher *events.Publisher
	Audit     *Audit
	// Credentials mints and revokes a store's NATS credentials; nil when
	// the deployment has no account signing key.
	Credentials *natsauth.Issuer
	// StoreCalls bounds each store-role caller's calls through Handler
	// (DefaultStoreCalls when zero).
	StoreCalls CallLimit
}

// Server is the AdminService.
type Server struct {
	d Deps
}

var _ adminv1connect.AdminServiceHandler = (*Server)(nil)

// New returns the server.
func New(d Deps) *Server { return &Server{d: d} }

// principal is the caller, set by the interceptor or the web console.
func principal(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.From(ctx)
	if !ok {
		return auth.Principal{}, newError(connect.CodeUnauthenticated, auth.ErrUnauthenticated)
	}
	return p, nil
}

// scope is the tenant the caller may reach for a call naming tenant ("" is
// every tenant the caller may see).
func scope(ctx context.Context, tenantID string) (auth.Principal, string, error) {
	p, err := principal(ctx)
	if err != nil {
		return p, "", err
	}
	t, err := p.Scope(tenantID)
	if err != nil {
		return p, "", newError(connect.CodePermissionDenied, err)
	}
	return p, t, nil
}

// one is scope for a call that must name one tenant.
func one(ctx context.Context, tenantID string) (auth.Principal, error) {
	p, t, err := scope(ctx, tenantID)
	if err != nil {
		return p, err
	}
	if t == "" {
		return p, newError(connect.CodeInvalidArgument, ErrTenantRequired)
	}
	if err := tenant.ValidID(t); err != nil {
		return p, newError(connect.CodeInvalidArgument, err)
	}
	return p, nil
}

func operatorOnly(ctx context.Context) (auth.Principal, error) {
	p, err := principal(ctx)
	if err == nil && !p.Operator() {
		err = newError(connect.CodePermissionDenied, ErrOperatorsOnly)
	}
	return p, err
}

// Code is the connect code an error of the packages below maps to.
func Code(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	var be *brokerclient.Error
	if errors.As(err, &be) {
		return connect.Code(be.Code)
	}
	switch {
	case errors.Is(err, tenant.ErrUnknown), errors.Is(err, orders.ErrNotFound), errors.Is(err, events.ErrDeadLetterNotFound):
		return connect.CodeNotFound
	case errors.Is(err, tenant.ErrInvalid), errors.Is(err, orders.ErrInvalidHiperID), errors.Is(err, tenant.ErrInvalidID):
		return connect.CodeInvalidArgument
	case errors.Is(err, orders.ErrWrongState), errors.Is(err, ops.ErrNothingHeld), errors.Is(err, ops.ErrNotSyncing),
		errors.Is(err, tenant.ErrPaused), errors.Is(err, tenant.ErrNotConnected),
		errors.Is(err, natsauth.ErrNoSigningKey), errors.Is(err, natsauth.ErrNoRevocation), errors.Is(err, natsauth.ErrNotEnforced):
		return connect.CodeFailedPrecondition
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded
	case errors.Is(err, auth.ErrPermissionDenied):
		return connect.CodePermissionDenied
	case errors.Is(err, auth.ErrUnauthenticated):
		return connect.CodeUnauthenticated
	}
	return connect.CodeInternal
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		withRefusal(ce)
		return err
	}
	return newError(Code(err), err)
}

// mutate runs a mutating call and writes it to the audit log, whatever its
// outcome.
func (s *Server) mutate(ctx context.Context, p auth.Principal, action, tenantID string, req proto.Message, call func() error) error {
	err := wrap(call())
	s.d.Audit.Record(ctx, p, action, tenantID, req, err)
	return err
}

// refused writes to the audit log a mutating call refused before it ran,
// as mutate writes one that ran, and returns err: a store's key reaching
// for another store, a missing or invalid tenant, an invalid request. A
// store's caller's attempt is filed under its own tenant, so that another
// store never reads of it; a caller not authenticated is not written.
func (s *Server) refused(ctx context.Context, p auth.Principal, action, tenantID string, req proto.Message, err error) error {
	if p.Subject == "" {
		return err
	}
	if !p.Operator() {
		tenantID = p.Tenant
	} else if tenant.ValidID(tenantID) != nil {
		tenantID = ""
	}
	s.d.Audit.Record(ctx, p, action, tenantID, req, err)
	return err
}

func (s *Server) WhoAmI(ctx context.Context, _ *adminv1.WhoAmIRequest) (*adminv1.WhoAmIResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	return &adminv1.WhoAmIResponse{Subject: p.Subject, Role: p.Role, TenantId: p.Tenant, Method: p.Method}, nil
}

func (s *Server) ListTenants(ctx context.Context, _ *adminv1.ListTenantsRequest) (*adminv1.ListTenantsResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if !p.Operator() {
		resp, err := s.d.Tenants.GetTenant(ctx, &brokerv1.GetTenantRequest{TenantId: p.Tenant})
		if err != nil {
			return nil, wrap(brokerclient.FromStatus(err))
		}
		return &adminv1.ListTenantsResponse{Tenants: []*brokerv1.Tenant{resp.GetTenant()}}, nil
	}
	resp, err := s.d.Tenants.ListTenants(ctx, &brokerv1.ListTenantsRequest{})
	if err != nil {
		return nil, wrap(brokerclient.FromStatus(err))
	}
	return &adminv1.ListTenantsResponse{Tenants: resp.GetTenants()}, nil
}

func (s *Server) GetTenant(ctx context.Context, req *adminv1.GetTenantRequest) (*adminv1.GetTenantResponse, error) {
	if _, err := one(ctx, req.GetTenantId()); err != nil {
		return nil, err
	}
	resp, err := s.d.Tenants.GetTenant(ctx, &brokerv1.GetTenantRequest{TenantId: req.GetTenantId()})
	if err != nil {
		return nil, wrap(brokerclient.FromStatus(err))
	}
	return &adminv1.GetTenantResponse{Tenant: resp.GetTenant()}, nil
}

// tenantCall is a mutating registry call that answers with the tenant.
func (s *Server) tenantCall(ctx context.Context, action, tenantID string, req proto.Message, call func() (interface{ GetTenant() *brokerv1.Tenant }, error)) (*brokerv1.Tenant, error) {
	p, err := one(ctx, tenantID)
	if err != nil {
		return nil, s.refused(ctx, p, action, tenantID, req, err)
	}
	var t *brokerv1.Tenant
	err = s.mutate(ctx, p, action, tenantID, req, func() error {
		resp, err := call()
		if err != nil {
			return brokerclient.FromStatus(err)
		}
		t = resp.GetTenant()
		return nil
	})
	return t, err
}

func (s *Server) ConnectTenant(ctx context.Context, req *adminv1.ConnectTenantRequest) (*adminv1.ConnectTenantResponse, error) {
	t, err := s.tenantCall(ctx, "ConnectTenant", req.GetTenantId(), req, func() (interface{ GetTenant() *brokerv1.Tenant }, error) {
		return s.d.Tenants.ConnectTenant(ctx, &brokerv1.ConnectTenantRequest{TenantId: req.GetTenantId(), SecurityKey: strings.TrimSpace(req.GetSecurityKey())})
	})
	return &adminv1.ConnectTenantResponse{Tenant: t}, err
}

func (s *Server) PauseTenant(ctx context.Context, req *adminv1.PauseTenantRequest) (*adminv1.PauseTenantResponse, error) {
	t, err := s.tenantCall(ctx, "PauseTenant", req.GetTenantId(), req, func() (interface{ GetTenant() *brokerv1.Tenant }, error) {
		return s.d.Tenants.PauseTenant(ctx, &brokerv1.PauseTenantRequest{TenantId: req.GetTenantId()})
	})
	return &adminv1.PauseTenantResponse{Tenant: t}, err
}

func (s *Server) ResumeTenant(ctx context.Context, req *adminv1.ResumeTenantRequest) (*adminv1.ResumeTenantResponse, error) {
	t, err := s.tenantCall(ctx, "ResumeTenant", req.GetTenantId(), req, func() (interface{ GetTenant() *brokerv1.Tenant }, error) {
		return s.d.Tenants.ResumeTenant(ctx, &brokerv1.ResumeTenantRequest{TenantId: req.GetTenantId()})
	})
	return &adminv1.ResumeTenantResponse{Tenant: t}, err
}

func (s *Server) DisconnectTenant(ctx context.Context, req *adminv1.DisconnectTenantRequest) (*adminv1.DisconnectTenantResponse, error) {
	t, err := s.tenantCall(ctx, "DisconnectTenant", req.GetTenantId(), req, func() (interface{ GetTenant() *brokerv1.Tenant }, error) {
		return s.d.Tenants.DisconnectTenant(ctx, &brokerv1.DisconnectTenantRequest{TenantId: req.GetTenantId()})
	})
	return &adminv1.DisconnectTenantResponse{Tenant: t}, err
}

func (s *Server) UpdateTenantSettings(ctx context.Context, req *adminv1.UpdateTenantSettingsRequest) (*adminv1.UpdateTenantSettingsResponse, error) {
	t, err := s.tenantCall(ctx, "UpdateTenantSettings", req.GetTenantId(), req, func() (interface{ GetTenant() *brokerv1.Tenant }, error) {
		return s.d.Tenants.UpdateTenantSettings(ctx, &brokerv1.UpdateTenantSettingsRequest{
			TenantId: req.GetTenantId(), Settings: req.GetSettings(), UpdateMask: req.GetUpdateMask()})
	})
	return &adminv1.UpdateTenantSettingsResponse{Tenant: t}, err
}

func (s *Server) GetTenantCredentials(ctx context.Context, req *adminv1.GetTenantCredentialsRequest) (*adminv1.GetTenantCredentialsResponse, error) {
	p, err := one(ctx, req.GetTenantId())
	if err != nil {
		return nil, s.refused(ctx, p, "GetTenantCredentials", req.GetTenantId(), req, err)
	}
	expires := natsauth.DefaultExpiry
	if req.GetNeverExpires() {
		expires = 0
	} else if req.GetExpires() != nil {
		if d := req.GetExpires().AsDuration(); d < 0 {
			return nil, s.refused(ctx, p, "GetTenantCredentials", req.GetTenantId(), req, newError(connect.CodeInvalidArgument, errExpiry))
		} else if d > 0 {
			expires = d
		}
	}
	resp := &adminv1.GetTenantCredentialsResponse{}
	err = s.mutate(ctx, p, "GetTenantCredentials", req.GetTenantId(), req, func() error {
		creds, user, err := s.d.Credentials.Issue(ctx, req.GetTenantId(), expires)
		if err != nil {
			return err
		}
		resp.Creds, resp.User = string(creds), user
		if expires > 0 {
			resp.ExpiresAt = timestamppb.New(time.Now().Add(expires))
		}
		resp.InboxPrefix = natsauth.InboxPrefix(s.d.NS, req.GetTenantId())
		resp.PublishSubject = s.d.NS.StoreSubject(req.GetTenantId(), ">")
		resp.SubscribeSubject = s.d.NS.HiperSubject(req.GetTenantId(), ">")
		return nil
	})
	return resp, err
}

func (s *Server) RevokeTenantCredentials(ctx context.Context, req *adminv1.RevokeTenantCredentialsRequest) (*adminv1.RevokeTenantCredentialsResponse, error) {
	p, err := one(ctx, req.GetTenantId())
	if err != nil {
		return nil, s.refused(ctx, p, "RevokeTenantCredentials", req.GetTenantId(), req, err)
	}
	err = s.mutate(ctx, p, "RevokeTenantCredentials", req.GetTenantId(), req, func() error {
		return s.d.Credentials.Revoke(ctx, req.GetTenantId())
	})
	if err != nil {
		return nil, err
	}
	return &adminv1.RevokeTenantCredentialsResponse{}, nil
}

func (s *Server) GetStatus(ctx context.Context, req *adminv1.GetStatusRequest) (*adminv1.GetStatusResponse, error) {
	_, t, err := scope(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	var all []ops.TenantStatus
	if t != "" {
		// One tenant: read by key, not the whole registry.
		one, ok, err := ops.StatusOf(ctx, s.d.JS, s.d.NS, t, time.Now())
		if err != nil {
			return nil, wrap(err)
		}
		if !ok {
			return nil, newError(connect.CodeNotFound, fmt.Errorf("tenant %s: %w", t, tenant.ErrUnknown))
		}
		all = []ops.TenantStatus{one}
	} else if all, err = ops.Status(ctx, s.d.JS, s.d.NS, time.Now()); err != nil {
		return nil, wrap(err)
	}
	review, err := s.ordersInReview(ctx, t)
	if err != nil {
		return nil, wrap(err)
	}
	dead, err := s.deadLettersByTenant(ctx, t)
	if err != nil {
		return nil, wrap(err)
	}
	resp := &adminv1.GetStatusResponse{}
	for _, ts := range all {
		resp.Tenants = append(resp.Tenants, statusOf(ts, review[ts.Tenant], dead[ts.Tenant]))
	}
	return resp, nil
}

func statusOf(ts ops.TenantStatus, review, dead int) *adminv1.TenantStatus {
	out := &adminv1.TenantStatus{TenantId: ts.Tenant, State: ts.State, StateReason: ts.StateReason, StateReasonCode: ts.StateReasonCode,
		OrdersInReview: int32(review), DeadLetters: int32(dead)}
	if !ts.Since.IsZero() {
		out.StateChangedAt = timestamppb.New(ts.Since)
	}
	for _, k := range ops.StatusKinds {
		if v := ts.Syncs[string(k)]; v != nil {
			out.Syncs = append(out.Syncs, syncStatusOf(string(k), v))
		}
	}
	if o := ts.HiperOutage; o != nil {
		out.HiperOutage = &adminv1.HiperOutage{Scope: o.Scope, Name: o.Name, Since: timestamppb.New(o.Since),
			NextProbe: timestamppb.New(o.NextProbe), LastError: o.LastError, Replica: o.Replica}
	}
	return out
}

// TenantStatusOf is the API's tenant status as pkg/ops has it, the inverse
// of statusOf: what the CLI prints, whether it asked a console or its own
// in-process handler.
func TenantStatusOf(ts *adminv1.TenantStatus) ops.TenantStatus {
	out := ops.TenantStatus{Tenant: ts.GetTenantId(), State: ts.GetState(), StateReason: ts.GetStateReason(), StateReasonCode: ts.GetStateReasonCode(),
		Syncs: map[string]*ops.SyncView{}}
	if ts.GetStateChangedAt() != nil {
		out.Since = ts.GetStateChangedAt().AsTime()
	}
	for _, s := range ts.GetSyncs() {
		v := &ops.SyncView{Lag: s.GetLag().AsDuration(), Stale: s.GetStale(), Running: s.GetRunning(),
			ItemsPublished: s.GetItemsPublished(), LastError: s.GetLastError(), Held: s.GetHeld(),
			Owner: s.GetOwner(), FullRunning: s.GetFullRunning(), FullCursor: s.GetFullCursor(), Products: s.GetProducts(),
			Target: s.GetTargetInterval().AsDuration(), Expect: s.GetExpectInterval().AsDuration()}
		v.LagSeconds = v.Lag.Seconds()
		v.SetIntervals()
		if s.GetLastSuccessAt() != nil {
			at := s.GetLastSuccessAt().AsTime()
			v.LastSuccessAt = &at
		}
		if s.GetLastErrorAt() != nil {
			at := s.GetLastErrorAt().AsTime()
			v.LastErrorAt = &at
		}
		out.Syncs[s.GetKind()] = v
	}
	if o := ts.GetHiperOutage(); o != nil {
		out.HiperOutage = &ops.Outage{Scope: o.GetScope(), Name: o.GetName(), Since: o.GetSince().AsTime(),
			NextProbe: o.GetNextProbe().AsTime(), LastError: o.GetLastError(), Replica: o.GetReplica()}
	}
	return out
}

func syncStatusOf(kind string, v *ops.SyncView) *adminv1.SyncStatus {
	out := &adminv1.SyncStatus{Kind: kind, Lag: durationpb.New(v.Lag), Stale: v.Stale, Running: v.Running,
		ItemsPublished: v.ItemsPublished, LastError: v.LastError, Held: v.Held,
		Owner: v.Owner, FullRunning: v.FullRunning, FullCursor: v.FullCursor, Products: v.Products}
	if v.Target > 0 {
		out.TargetInterval = durationpb.New(v.Target)
	}
	if v.Expect > 0 {
		out.ExpectInterval = durationpb.New(v.Expect)
	}
	if v.LastSuccessAt != nil {
		out.LastSuccessAt = timestamppb.New(*v.LastSuccessAt)
	}
	if v.LastErrorAt != nil {
		out.LastErrorAt = timestamppb.New(*v.LastErrorAt)
	}
	return out
}

func kindsOf(names []string) ([]syncstatus.Kind, error) {
	var ks []syncstatus.Kind
	for _, n := range names {
		k := syncstatus.Kind(n)
		if k != syncstatus.Catalog && k != syncstatus.Stock {
			return nil, newError(connect.CodeInvalidArgument, fmt.Errorf("kind %q: %w", n, errSyncKind))
		}
		ks = append(ks, k)
	}
	return ks, nil
}

func (s *Server) syncNow(ctx context.Context, r ops.SyncRequest, timeout *durationpb.Duration) ([]*adminv1.SyncResult, error) {
	if r.Wait {
		d := 2 * time.Minute
		if timeout != nil && timeout.AsDuration() > 0 {
			d = min(timeout.AsDuration(), 10*time.Minute)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	results, err := ops.SyncNow(ctx, s.d.JS, s.d.NS, r, nil)
	if err != nil {
		return nil, err
	}
	out := make([]*adminv1.SyncResult, 0, len(results))
	for _, res := range results {
		sr := &adminv1.SyncResult{Kind: string(res.Kind), RequestId: res.Request.ID, Outcome: res.Outcome}
		if b, err := json.Marshal(res); err == nil {
			sr.ResultJson = string(b)
		}
		if res.Status != nil {
			sr.Status = syncStatusOf(string(res.Kind), ops.ViewOf(*res.Status, time.Now()))
		}
		out = append(out, sr)
	}
	return out, nil
}

func (s *Server) SyncNow(ctx context.Context, req *adminv1.SyncNowRequest) (*adminv1.SyncNowResponse, error) {
	results, err := s.requestSync(ctx, "SyncNow", req, ops.SyncRequest{Full: req.GetFull(), Products: req.GetProducts()})
	return &adminv1.SyncNowResponse{Results: results}, err
}

func (s *Server) ApproveHeldChange(ctx context.Context, req *adminv1.ApproveHeldChangeRequest) (*adminv1.ApproveHeldChangeResponse, error) {
	results, err := s.requestSync(ctx, "ApproveHeldChange", req, ops.SyncRequest{Approve: true})
	return &adminv1.ApproveHeldChangeResponse{Results: results}, err
}

// syncRequest is what SyncNow and ApproveHeldChange ask alike.
type syncRequest interface {
	proto.Message
	GetTenantId() string
	GetKinds() []string
	GetWait() bool
	GetTimeout() *durationpb.Duration
}

// requestSync asks one tenant's pollers for the run r describes (its
// tenant, kinds and wait taken from req), as the audited action method.
func (s *Server) requestSync(ctx context.Context, method string, req syncRequest, r ops.SyncRequest) ([]*adminv1.SyncResult, error) {
	p, err := one(ctx, req.GetTenantId())
	if err == nil {
		r.Kinds, err = kindsOf(req.GetKinds())
	}
	if err != nil {
		return nil, s.refused(ctx, p, method, req.GetTenantId(), req, err)
	}
	r.Tenant, r.Wait = req.GetTenantId(), req.GetWait()
	var results []*adminv1.SyncResult
	err = s.mutate(ctx, p, method, req.GetTenantId(), req, func() error {
		var err error
		results, err = s.syncNow(ctx, r, req.GetTimeout())
		return err
	})
	return results, err
}

func (s *Server) ListDeadLetters(ctx context.Context, req *adminv1.ListDeadLettersRequest) (*adminv1.ListDeadLettersResponse, error) {
	_, t, err := scope(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	if limit <= 0 {
		limit = 100
	}
	page, err := events.PageDeadLetters(ctx, s.d.JS, s.d.NS, t, req.GetBeforeId(), limit)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return &adminv1.ListDeadLettersResponse{}, nil
	}
	if err != nil {
		return nil, wrap(err)
	}
	resp := &adminv1.ListDeadLettersResponse{Total: int32(page.Total), NextBeforeId: page.Older}
	for i := len(page.Entries) - 1; i >= 0; i-- { // oldest first
		resp.DeadLetters = append(resp.DeadLetters, deadLetterOf(page.Entries[i]))
	}
	return resp, nil
}

func deadLetterOf(en events.DeadLetterEntry) *adminv1.DeadLetter {
	v := &adminv1.DeadLetter{Id: en.Seq, Time: timestamppb.New(en.Time), Subject: en.Subject}
	if en.Err != nil {
		v.ReasonCode, v.Reason = "unreadable_record", en.Err.Error()
		return v
	}
	l := en.Letter
	v.TenantId, v.Consumer, v.Subject = l.GetTenant(), l.GetConsumer(), l.GetSubject()
	v.ReasonCode, v.Reason, v.Deliveries, v.BodyBytes = l.GetReasonCode(), l.GetReason(), l.GetDeliveries(), int32(len(l.GetData()))
	return v
}

// deadLettersByTenant counts each tenant's dead letters (of tenant only,
// when set) from the stream's per-subject counts (dlq.<tenant>.<consumer>),
// without reading a letter.
func (s *Server) deadLettersByTenant(ctx context.Context, tenantID string) (map[string]int, error) {
	st, err := s.d.JS.Stream(ctx, s.d.NS.Stream(events.StreamDeadLetter))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	filter := s.d.NS.StreamSubjects(events.StreamDeadLetter)
	if tenantID != "" {
		filter = s.d.NS.DeadLetterSubject(tenantID, "*")
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, err
	}
	n := map[string]int{}
	for subject, count := range info.State.Subjects {
		// dlq.<tenant>.<consumer>, under the namespace's prefix.
		if s.d.NS.Prefix != "" {
			subject = strings.TrimPrefix(subject, s.d.NS.Prefix+".")
		}
		if tokens := strings.SplitN(subject, ".", 3); len(tokens) == 3 {
			n[tokens[1]] += int(count)
		}
	}
	return n, nil
}

func (s *Server) RetryDeadLetter(ctx context.Context, req *adminv1.RetryDeadLetterRequest) (*adminv1.RetryDeadLetterResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	// A store-role caller retries only its own tenant's letters.
	tenantID := ""
	if !p.Operator() {
		mine, err := s.deadLetterOf(ctx, req.GetId(), p.Tenant)
		if err != nil {
			return nil, wrap(err)
		}
		if !mine {
			return nil, s.refused(ctx, p, "RetryDeadLetter", p.Tenant, req,
				newError(connect.CodeNotFound, fmt.Errorf("%w: no dead letter %d of %s", events.ErrDeadLetterNotFound, req.GetId(), p.Tenant)))
		}
		tenantID = p.Tenant
	}
	err = s.mutate(ctx, p, "RetryDeadLetter", tenantID, req, func() error {
		return events.RetryDeadLetter(ctx, s.d.JS, s.d.NS, req.GetId())
	})
	if err != nil {
		return nil, err
	}
	return &adminv1.RetryDeadLetterResponse{Id: req.GetId()}, nil
}

// deadLetterOf reports whether dead letter id is tenant's, reading that
// letter only (its subject is dlq.<tenant>.<consumer>).
func (s *Server) deadLetterOf(ctx context.Context, id uint64, tenantID string) (bool, error) {
	st, err := s.d.JS.Stream(ctx, s.d.NS.Stream(events.StreamDeadLetter))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	raw, err := st.GetMsg(ctx, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return strings.HasPrefix(raw.Subject, s.d.NS.DeadLetterSubject(tenantID, "")), nil
}

// StreamUsageOf is the API's stream usage as pkg/events has it.
func StreamUsageOf(u *adminv1.StreamUsage) events.StreamUsage {
	return events.StreamUsage{Stream: u.GetName(), Messages: u.GetMessages(), Bytes: u.GetBytes(), MaxBytes: u.GetMaxBytes(),
		MaxAge: u.GetMaxAge().AsDuration(), Replicas: int(u.GetReplicas())}
}

func (s *Server) GetStreamUsage(ctx context.Context, _ *adminv1.GetStreamUsageRequest) (*adminv1.GetStreamUsageResponse, error) {
	if _, err := operatorOnly(ctx); err != nil {
		return nil, err
	}
	usage, err := events.Usage(ctx, s.d.JS, s.d.NS)
	if err != nil {
		return nil, wrap(err)
	}
	resp := &adminv1.GetStreamUsageResponse{}
	for _, u := range usage {
		resp.Streams = append(resp.Streams, &adminv1.StreamUsage{Name: u.Stream, Messages: u.Messages, Bytes: u.Bytes,
			MaxBytes: u.MaxBytes, MaxAge: durationpb.New(u.MaxAge), UsedFraction: u.Used(), Replicas: int32(u.Replicas)})
	}
	return resp, nil
}

func (s *Server) ListAuditEntries(ctx context.Context, req *adminv1.ListAuditEntriesRequest) (*adminv1.ListAuditEntriesResponse, error) {
	_, t, err := scope(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	if limit <= 0 {
		limit = 200
	}
	entries, err := s.d.Audit.List(ctx, t, limit)
	if err != nil {
		return nil, wrap(err)
	}
	return &adminv1.ListAuditEntriesResponse{Entries: entries}, nil
}

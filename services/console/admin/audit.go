package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/services/console/auth"
)

// AuditStream keeps the audit log: one AuditEntry (protobuf JSON) per
// mutating call and per reveal of a customer's personal data, on subject
// audit.<tenant> ("audit._" for calls of no tenant).
const AuditStream events.Stream = "AUDIT"

// AuditMaxAge is how long the audit log is kept.
const AuditMaxAge = 400 * 24 * time.Hour

// Audit writes and reads the audit log.
type Audit struct {
	js  jetstream.JetStream
	ns  events.Namespace
	log *slog.Logger
	now func() time.Time
}

func (a *Audit) subject(tenantID string) string {
	if tenantID == "" {
		tenantID = "_"
	}
	return a.ns.ServiceSubject("audit", tenantID)
}

// OpenAudit creates or updates the audit stream (EnsureAuditStream): the
// console's, which keeps the log.
func OpenAudit(ctx context.Context, js jetstream.JetStream, ns events.Namespace, log *slog.Logger) (*Audit, error) {
	if _, err := EnsureAuditStream(ctx, js, ns); err != nil {
		return nil, err
	}
	return &Audit{js: js, ns: ns, log: log, now: time.Now}, nil
}

// JoinAudit opens the audit stream for a process that writes to the log
// but does not keep it: the CLI's in-process handler. It creates the
// stream when neither a console nor `hipersync provision` has yet, so the
// first call is recorded too, and leaves one that exists as it is: its
// bound (HIPERSYNC_AUDIT_MAX_BYTES) and replicas are the console's and
// provision's to set, not those of whatever environment a CLI runs in.
func JoinAudit(ctx context.Context, js jetstream.JetStream, ns events.Namespace, log *slog.Logger) (*Audit, error) {
	_, err := js.Stream(ctx, ns.Stream(AuditStream))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = EnsureAuditStream(ctx, js, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("open the audit log: %w", err)
	}
	return &Audit{js: js, ns: ns, log: log, now: time.Now}, nil
}

// EnsureAuditStream creates the audit stream of ns, or brings it to ns's
// bound (HIPERSYNC_AUDIT_MAX_BYTES) and replicas; safe from every console
// replica and `hipersync provision` at once (events.EnsureStream).
func EnsureAuditStream(ctx context.Context, js jetstream.JetStream, ns events.Namespace) (jetstream.Stream, error) {
	return events.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name: ns.Stream(AuditStream), Subjects: []string{ns.ServiceSubject("audit", ">")},
		Description: "hipersync: every mutating call of the admin API and every reveal of personal data (who, what, when)",
		Storage:     jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		MaxAge: AuditMaxAge, MaxBytes: ns.Limits.AuditMaxBytes, Replicas: ns.StreamReplicas(),
	})
}

// secretFields are request fields never written to the log.
var secretFields = map[string]bool{"security_key": true}

// Record writes one call. A failure to write is logged, not returned: the
// call already happened. A nil Audit records nothing (a handler built
// without one, in tests); the console and the CLI's in-process handler
// always have one.
func (a *Audit) Record(ctx context.Context, p auth.Principal, action, tenantID string, req proto.Message, callErr error) {
	if err := a.write(ctx, p, action, tenantID, req, callErr); err != nil {
		a.log.Error("audit log write failed", "action", action, "subject", p.Subject, "tenant", tenantID, "err", err)
	}
}

// write writes one call's entry and says whether it is stored.
func (a *Audit) write(ctx context.Context, p auth.Principal, action, tenantID string, req proto.Message, callErr error) error {
	if a == nil {
		return nil
	}
	e := &adminv1.AuditEntry{Time: timestamppb.New(a.now()), Subject: p.Subject, Role: p.Role, Action: action,
		TenantId: tenantID, Outcome: "OK"}
	if req != nil {
		clean := proto.Clone(req)
		m := clean.ProtoReflect()
		fields := m.Descriptor().Fields()
		for i := 0; i < fields.Len(); i++ {
			if fd := fields.Get(i); secretFields[string(fd.Name())] && m.Has(fd) {
				m.Clear(fd)
			}
		}
		if b, err := protojson.Marshal(clean); err == nil {
			e.RequestJson = string(b)
		}
	}
	if callErr != nil {
		e.Outcome, e.Error, e.ErrorCode = connect.CodeOf(callErr).String(), callErr.Error(), refusalOfError(callErr).Code
	}
	b, err := protojson.Marshal(e)
	if err == nil {
		_, err = a.js.Publish(context.WithoutCancel(ctx), a.subject(tenantID), b)
	}
	return err
}

// revealed writes to the audit log that the caller was shown a tenant's
// customers' personal data (GetOrder's or an event filter's reveal): who,
// when, which tenant ("" for every one), and in the request which order or
// filter. Whoever may read a tenant's orders and log may reveal them; the
// entry is what answers "who saw this customer", so no entry, no reveal:
// when it cannot be stored the call is refused (ErrNotAudited) and no
// personal data is sent.
func (s *Server) revealed(ctx context.Context, action, tenantID string, req proto.Message) error {
	p, _ := principal(ctx)
	if err := s.d.Audit.write(ctx, p, action, tenantID, req, nil); err != nil {
		s.d.Audit.log.Error("audit log write failed; the reveal is refused", "action", action, "subject", p.Subject,
			"tenant", tenantID, "err", err)
		return newError(connect.CodeUnavailable, fmt.Errorf("%w: %w", ErrNotAudited, err))
	}
	return nil
}

// ErrNotAudited refuses a reveal of personal data whose audit entry could
// not be stored.
var ErrNotAudited = errors.New("personal data not revealed: the audit log did not store the reveal")

// maxAuditScan bounds the records one List reads.
const maxAuditScan = 20000

// List returns up to limit entries of tenant ("" for all), newest first.
func (a *Audit) List(ctx context.Context, tenantID string, limit int) ([]*adminv1.AuditEntry, error) {
	if a == nil {
		return nil, errors.New("no audit log: this handler was built without one")
	}
	st, err := a.js.Stream(ctx, a.ns.Stream(AuditStream))
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	want := a.subject(tenantID)
	var out []*adminv1.AuditEntry
	// Newest first: walk back from the last sequence. The log is small
	// next to the event streams; a tenant's entries are read by subject.
	for seq, read := info.State.LastSeq, 0; seq >= info.State.FirstSeq && seq > 0 && len(out) < limit && read < maxAuditScan; seq, read = seq-1, read+1 {
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read the audit log: %w", err)
		}
		if tenantID != "" && raw.Subject != want {
			continue
		}
		e := &adminv1.AuditEntry{}
		if protojson.Unmarshal(raw.Data, e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

package admin

import (
	"context"
	"encoding/json"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/ops"
)

// Filter turns the API's event filter into the sync log's, scoped to what
// the caller may see. Whoever may read a tenant's log may have its
// customers' personal data revealed (EventFilter.reveal), as GetOrder's:
// a store's key its own store's; the API's calls write that reveal to the
// audit log (Server.revealed).
func Filter(ctx context.Context, f *adminv1.EventFilter, now time.Time) (ops.LogFilter, error) {
	_, t, err := scope(ctx, f.GetTenantId())
	if err != nil {
		return ops.LogFilter{}, err
	}
	since := time.Hour
	if f.GetSince() != nil && f.GetSince().AsDuration() > 0 {
		since = f.GetSince().AsDuration()
	}
	lf := ops.LogFilter{Tenant: t, Kind: f.GetKind(), Start: now.Add(-since), Contains: f.GetContains(),
		Order: f.GetOrderId(), Product: f.GetProductId(), Reveal: f.GetReveal()}
	if f.GetUntil() != nil {
		lf.Until = f.GetUntil().AsTime()
	}
	if lf.Outcome, err = ops.ParseOutcome(f.GetOutcome()); err != nil {
		return lf, newError(connect.CodeInvalidArgument, err)
	}
	switch f.GetSource() {
	case adminv1.EventSource_EVENT_SOURCE_STORE:
		lf.Sources = []events.Source{events.SourceStore}
	case adminv1.EventSource_EVENT_SOURCE_HIPER:
		lf.Sources = []events.Source{events.SourceHiper}
	}
	if err := lf.Validate(); err != nil {
		return lf, newError(connect.CodeInvalidArgument, err)
	}
	return lf, nil
}

// LogLine is the API's log event as pkg/ops has it, the inverse of
// LogEvent: what `hipersync events tail` prints.
func LogLine(e *adminv1.LogEvent) ops.LogLine {
	l := ops.LogLine{Time: e.GetTime().AsTime(), Stream: e.GetStream(), Subject: e.GetSubject(), Tenant: e.GetTenantId(),
		Kind: e.GetKind(), ID: e.GetId(), Error: e.GetError(), Summary: e.GetSummary()}
	if e.GetEventJson() != "" {
		l.Event = json.RawMessage(e.GetEventJson())
	}
	return l
}

// LogEvent is a log line as the API returns it.
func LogEvent(l ops.LogLine) *adminv1.LogEvent {
	return &adminv1.LogEvent{Time: timestamppb.New(l.Time), Stream: l.Stream, Subject: l.Subject, TenantId: l.Tenant,
		Kind: l.Kind, Id: l.ID, EventJson: string(l.Event), Summary: l.Summary, Error: l.Error}
}

func (s *Server) QueryEvents(ctx context.Context, req *adminv1.QueryEventsRequest) (*adminv1.QueryEventsResponse, error) {
	f, err := Filter(ctx, req.GetFilter(), time.Now())
	if err != nil {
		return nil, err
	}
	if f.Reveal {
		if err := s.revealed(ctx, "QueryEvents", f.Tenant, req); err != nil {
			return nil, err
		}
	}
	lines, err := ops.ReadLog(ctx, s.d.JS, s.d.NS, f)
	if err != nil {
		return nil, wrap(err)
	}
	limit := int(req.GetLimit())
	if limit <= 0 {
		limit = 1000
	}
	if len(lines) > limit {
		lines = lines[len(lines)-limit:]
	}
	resp := &adminv1.QueryEventsResponse{Events: make([]*adminv1.LogEvent, 0, len(lines))}
	for _, l := range lines {
		resp.Events = append(resp.Events, LogEvent(l))
	}
	return resp, nil
}

func (s *Server) StreamEvents(ctx context.Context, req *adminv1.StreamEventsRequest, stream *connect.ServerStream[adminv1.StreamEventsResponse]) error {
	f, err := Filter(ctx, req.GetFilter(), time.Now())
	if err != nil {
		return err
	}
	if f.Reveal {
		if err := s.revealed(ctx, "StreamEvents", f.Tenant, req); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sendErr error
	err = s.Follow(ctx, f, func(l ops.LogLine) {
		if sendErr != nil {
			return
		}
		if sendErr = stream.Send(&adminv1.StreamEventsResponse{Event: LogEvent(l)}); sendErr != nil {
			cancel()
		}
	})
	if sendErr != nil {
		return sendErr
	}
	return wrap(err)
}

// Follow calls emit with each event f selects until ctx is done; the web
// console's live log uses it too.
func (s *Server) Follow(ctx context.Context, f ops.LogFilter, emit func(ops.LogLine)) error {
	return ops.FollowLog(ctx, s.d.JS, s.d.NS, f, emit)
}

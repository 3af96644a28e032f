package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/personal"
	watchorder "github.com/hipersync/hipersync/services/invoice-watcher/order"
	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

func (s *Server) orderStore(ctx context.Context) (*orders.Store, error) {
	st, err := orders.Attach(ctx, s.d.JS, s.d.NS)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, newError(connect.CodeNotFound, err)
	}
	if err != nil {
		return nil, wrap(err)
	}
	return st, nil
}

// ordersInReview counts each tenant's orders in needs_review (of tenant
// only, when set). No orders bucket yet is no orders.
func (s *Server) ordersInReview(ctx context.Context, tenantID string) (map[string]int, error) {
	kv, err := s.d.JS.KeyValue(ctx, s.d.NS.Bucket(orders.Bucket))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	filter := ">"
	if tenantID != "" {
		filter = orders.TenantPrefix(tenantID)
	}
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	n := map[string]int{}
	for entry := range w.Updates() {
		if entry == nil {
			return n, nil
		}
		var r struct {
			Tenant string       `json:"tenant"`
			State  orders.State `json:"state"`
		}
		if json.Unmarshal(entry.Value(), &r) == nil && r.State == orders.StateNeedsReview {
			n[r.Tenant]++
		}
	}
	return n, ctx.Err()
}

func (s *Server) ListOrders(ctx context.Context, req *adminv1.ListOrdersRequest) (*adminv1.ListOrdersResponse, error) {
	if _, err := one(ctx, req.GetTenantId()); err != nil {
		return nil, err
	}
	if st := req.GetState(); st != "" && !orders.ValidState(st) {
		return nil, newError(connect.CodeInvalidArgument, fmt.Errorf("state %q: %w", st, errOrderState))
	}
	store, err := s.orderStore(ctx)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return &adminv1.ListOrdersResponse{NoOrderState: true}, nil // no order yet
	}
	if err != nil {
		return nil, err
	}
	recs, err := store.List(ctx, req.GetTenantId())
	if err != nil {
		return nil, wrap(err)
	}
	limit := int(req.GetLimit())
	if limit <= 0 {
		limit = 500
	}
	q := strings.ToLower(strings.TrimSpace(req.GetQuery()))
	resp := &adminv1.ListOrdersResponse{}
	// Newest first.
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if req.GetState() != "" && string(r.State) != req.GetState() {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(r.OrderID), q) && !strings.Contains(strings.ToLower(r.HiperOrderID), q) {
			continue
		}
		resp.Total++
		if len(resp.Orders) < limit {
			resp.Orders = append(resp.Orders, orderOf(r, false))
		}
	}
	return resp, nil
}

func (s *Server) GetOrder(ctx context.Context, req *adminv1.GetOrderRequest) (*adminv1.GetOrderResponse, error) {
	if _, err := one(ctx, req.GetTenantId()); err != nil {
		return nil, err
	}
	store, err := s.orderStore(ctx)
	if err != nil {
		return nil, err
	}
	rec, _, err := store.Get(ctx, req.GetTenantId(), req.GetOrderId())
	if err != nil {
		return nil, wrap(err)
	}
	o := orderOf(rec, true)
	if req.GetReveal() {
		if err := s.revealed(ctx, "GetOrder", req.GetTenantId(), req); err != nil {
			return nil, err
		}
		o.RecordJson, o.ApprovalJson = recordJSON(rec), approvalJSON(rec, true)
	}
	if err := s.addTimeline(ctx, rec, o); err != nil {
		return nil, wrap(err)
	}
	code, stages := s.hiperProgress(ctx, req.GetTenantId(), req.GetOrderId())
	o.HiperStages = stages
	if o.HiperOrderNumber == "" {
		o.HiperOrderNumber = code
	}
	return &adminv1.GetOrderResponse{Order: o}, nil
}

func (s *Server) ResolveOrder(ctx context.Context, req *adminv1.ResolveOrderRequest) (*adminv1.ResolveOrderResponse, error) {
	p, err := one(ctx, req.GetTenantId())
	if err == nil && (req.GetResolution() == nil || (req.GetHiperOrderId() == "" && !req.GetResend())) {
		err = newError(connect.CodeInvalidArgument, errResolution)
	}
	if err != nil {
		return nil, s.refused(ctx, p, "ResolveOrder", req.GetTenantId(), req, err)
	}
	store, err := s.orderStore(ctx)
	if err != nil {
		return nil, err
	}
	by := p.Subject + " (console)"
	if p.Method == "local" {
		by = p.Subject // the CLI's in-process handler: its subject says so
	}
	op := orders.Operator{Store: store, Publisher: s.d.Publisher, NS: s.d.NS, By: by}
	var rec *orders.Record
	err = s.mutate(ctx, p, "ResolveOrder", req.GetTenantId(), req, func() error {
		var err error
		if req.GetResend() {
			rec, err = op.Resend(ctx, req.GetTenantId(), req.GetOrderId())
		} else {
			rec, err = op.Resolve(ctx, req.GetTenantId(), req.GetOrderId(), strings.TrimSpace(req.GetHiperOrderId()))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &adminv1.ResolveOrderResponse{Order: orderOf(rec, true)}, nil
}

// Actions are the ways out of an order's state a person may take: an
// order Hiper failed may only be resent (Hiper holds it, failed).
func Actions(r *orders.Record) []string {
	switch {
	case r.State == orders.StateNeedsReview, r.State == orders.StateFailed:
		return []string{"resolve", "resend"}
	case r.FailedInHiper():
		return []string{"resend"}
	}
	return nil
}

func orderOf(r *orders.Record, detail bool) *adminv1.Order {
	o := &adminv1.Order{TenantId: r.Tenant, OrderId: r.OrderID, State: string(r.State), HiperOrderId: r.HiperOrderID,
		Generation: int32(r.Generation), Attempts: int32(r.Attempts), Reason: r.Reason, LastError: r.LastError,
		CancelRequested: r.Cancel != nil, CreatedAt: timestamppb.New(r.CreatedAt), UpdatedAt: timestamppb.New(r.UpdatedAt),
		Actions: Actions(r), HiperAnswer: r.Answer}
	if r.FailedInHiper() {
		o.HiperFailure, o.HiperFailedAt = r.HiperFailure.Message, timestamppb.New(r.HiperFailure.At)
	}
	if !r.SentAt.IsZero() {
		o.SentAt = timestamppb.New(r.SentAt)
	}
	for _, rr := range r.Reasons {
		o.Problems = append(o.Problems, &adminv1.Problem{Code: rr.Code, Field: rr.Field, Message: rr.Message})
	}
	o.RecordJson = recordJSON(r.Masked())
	if !detail {
		return o
	}
	for _, h := range r.History {
		o.Timeline = append(o.Timeline, &adminv1.TimelineEntry{At: timestamppb.New(h.At), Step: string(h.To), By: h.By, Note: h.Note})
	}
	o.ApprovalJson = approvalJSON(r, false)
	return o
}

// approvalJSON is the order as the store sent it, indented, its customer
// masked (personal.MaskEvent) unless reveal; "" if it cannot be read.
func approvalJSON(r *orders.Record, reveal bool) string {
	a, err := r.ApprovalMessage()
	if err != nil {
		return ""
	}
	if !reveal {
		personal.MaskEvent(a)
	}
	b, err := (protojson.MarshalOptions{Indent: "  "}).Marshal(a)
	if err != nil {
		return ""
	}
	return string(b)
}

// recordJSON is the record as JSON, "" if it cannot be encoded.
func recordJSON(r *orders.Record) string {
	b, err := json.Marshal(r)
	if err != nil {
		return ""
	}
	return string(b)
}

// hiperProgress is what the invoice-watcher knows of an order in Hiper:
// Hiper's order number and the stages it published, sorted. Nothing when
// the watcher does not follow it (yet, or any more).
func (s *Server) hiperProgress(ctx context.Context, tenantID, orderID string) (code string, stages []string) {
	kv, err := s.d.JS.KeyValue(ctx, s.d.NS.Bucket(watcher.Bucket))
	if err != nil {
		return "", nil
	}
	key, err := watchorder.Key(tenantID, orderID)
	if err != nil {
		return "", nil
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		return "", nil
	}
	var r watchorder.Record
	if json.Unmarshal(e.Value(), &r) != nil {
		return "", nil
	}
	for k := range r.Published {
		stages = append(stages, string(k))
	}
	sort.Strings(stages)
	return r.HiperCode, stages
}

// addTimeline adds what the sync log says of the order (the store's
// events, and the invoice and shipping hipersync published) to its
// history, in time order.
func (s *Server) addTimeline(ctx context.Context, r *orders.Record, o *adminv1.Order) error {
	idJSON, _ := json.Marshal(r.OrderID)
	start := r.CreatedAt.Add(-time.Hour)
	reads := []ops.LogFilter{
		{Tenant: r.Tenant, Kind: "order.>", Sources: []events.Source{events.SourceStore}},
		{Tenant: r.Tenant, Kind: "order.>", Sources: []events.Source{events.SourceHiper}},
		{Tenant: r.Tenant, Kind: "invoice.>", Sources: []events.Source{events.SourceHiper}},
	}
	var steps []*adminv1.TimelineEntry
	for _, f := range reads {
		f.Start, f.Contains = start, `"orderId":`+string(idJSON)
		lines, err := ops.ReadLog(ctx, s.d.JS, s.d.NS, f)
		if err != nil {
			return err
		}
		for _, l := range lines {
			steps = append(steps, &adminv1.TimelineEntry{At: timestamppb.New(l.Time), Step: l.Kind, By: "event", Note: l.Summary})
			var ev struct {
				HiperOrderCode string `json:"hiperOrderCode"`
				Number         string `json:"number"`
				AccessKey      string `json:"accessKey"`
				TrackingCode   string `json:"trackingCode"`
				Note           string `json:"note"`
			}
			_ = json.Unmarshal(l.Event, &ev)
			if ev.HiperOrderCode != "" {
				o.HiperOrderNumber = ev.HiperOrderCode
			}
			switch l.Kind {
			case string(events.KindInvoiceIssued):
				o.InvoiceNumber, o.InvoiceKey = ev.Number, ev.AccessKey
			case string(events.KindOrderShipped):
				o.TrackingCode = ev.TrackingCode
				if o.TrackingCode == "" {
					o.Carrier = ev.Note
				}
			}
		}
	}
	o.Timeline = append(o.Timeline, steps...)
	sort.SliceStable(o.Timeline, func(i, j int) bool {
		return o.Timeline[i].GetAt().AsTime().Before(o.Timeline[j].GetAt().AsTime())
	})
	return nil
}

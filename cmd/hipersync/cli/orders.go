package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

const ordersUsage = `usage:
  hipersync orders list <tenant> [--state STATE]
  hipersync orders show <tenant> <orderId> [--reveal]   --reveal prints the customer as sent (CPF/CNPJ,
      e-mail, names, addresses, notes: personal data, masked otherwise; audited)
  hipersync orders resolve <tenant> <orderId> --hiper-id ID   the order is in Hiper with this id
  hipersync orders resolve <tenant> <orderId> --resend        it is not: send it again`

// orderView is an order as `orders list|show --json` prints it: the stored
// record, with the approval as the JSON a store sends and the outbox
// without its encoded payload.
type orderView struct {
	*orders.Record
	Approval json.RawMessage `json:"approval,omitempty"`
	Outbox   *outboxView     `json:"outbox,omitempty"`
	// HiperCode is Hiper's order number (codigoDoPedidoDeVenda) and
	// HiperStages what Hiper did with the order, as the invoice-watcher
	// follows it.
	HiperCode   string   `json:"hiperCode,omitempty"`
	HiperStages []string `json:"hiperStages,omitempty"`
}

// progress is what the invoice-watcher knows of an order in Hiper.
type progress struct {
	code   string
	stages []string
}

func writeProgress(w io.Writer, p progress) error {
	if p.code == "" && len(p.stages) == 0 {
		return nil
	}
	_, err := fmt.Fprintf(w, "hiper code\t%s\nin hiper\t%s\n", orNone(p.code), strings.Join(p.stages, ", "))
	return err
}

type outboxView struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Published bool   `json:"published"`
}

// ordersFlags are the flags of the orders subcommands.
type ordersFlags struct {
	state, hiperID string
	resend, reveal bool
}

func (a *app) ordersCmd() *cobra.Command {
	var f ordersFlags
	sub := func(use, short string) *cobra.Command {
		name, _, _ := strings.Cut(use, " ")
		return &cobra.Command{Use: use, Short: short,
			RunE: func(_ *cobra.Command, pos []string) error { return a.runOrders(name, pos, f, a.asJSON) }}
	}
	list := sub("list <tenant>", "a store's orders, oldest first (--state: only those in one state)")
	list.Flags().StringVar(&f.state, "state", "", "list only orders in this state ("+stateNames()+")")
	show := sub("show <tenant> <orderId>", "an order: its state, what Hiper answered, its history")
	show.Flags().BoolVar(&f.reveal, "reveal", false, "print the customer's CPF/CNPJ, e-mail, names, addresses and notes as sent (personal data; masked otherwise; written to the audit log)")
	resolve := sub("resolve <tenant> <orderId>", "settle an order in needs_review: --hiper-id ID (it is in Hiper) or --resend (it is not, or Hiper failed it)")
	resolve.Flags().StringVar(&f.hiperID, "hiper-id", "", "the order's id in Hiper (a UUID): the order is in Hiper")
	resolve.Flags().BoolVar(&f.resend, "resend", false, "the order is not in Hiper; send it again")
	return group("orders", "list, show and resolve orders", ordersUsage, list, show, resolve)
}

func (a *app) runOrders(sub string, pos []string, f ordersFlags, asJSON bool) error {
	ctx, e := a.ctx, a.e
	state, hiperID, resend, reveal := &f.state, &f.hiperID, &f.resend, &f.reveal
	want := map[string]int{"list": 1, "show": 2, "resolve": 2}
	n, known := want[sub]
	if !known {
		return usagef("orders: unknown subcommand %q\n%s", sub, ordersUsage)
	}
	if len(pos) != n {
		return usagef("orders %s: want %d argument(s), got %d\n%s", sub, n, len(pos), ordersUsage)
	}
	if err := tenant.ValidID(pos[0]); err != nil {
		return usagef("orders %s: %v", sub, err)
	}
	if *state != "" && (sub != "list" || !orders.ValidState(*state)) {
		return usagef("orders: --state goes with list and is one of %s", stateNames())
	}
	if sub == "resolve" && (*hiperID == "") == !*resend {
		return usagef("orders resolve: give either --hiper-id ID or --resend\n%s", ordersUsage)
	}
	if sub != "resolve" && (*hiperID != "" || *resend) {
		return usagef("orders %s: --hiper-id and --resend go with resolve", sub)
	}

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := a.admin(needs{})
	if err != nil {
		return err
	}
	defer c.Close()
	tenantID := pos[0]

	switch sub {
	case "list":
		resp, err := c.ListOrders(ctx, &adminv1.ListOrdersRequest{TenantId: tenantID, State: *state, Limit: math.MaxInt32})
		if err != nil {
			return apiError(err)
		}
		if resp.GetNoOrderState() {
			return errors.New("no order state yet: has order-forwarder run in this deployment?")
		}
		// The API answers newest first; the list reads oldest first.
		got := resp.GetOrders()
		recs := make([]*orders.Record, 0, len(got))
		for i := len(got) - 1; i >= 0; i-- {
			rec, err := recordOf(got[i])
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		if asJSON {
			views := make([]orderView, 0, len(recs))
			for _, r := range recs {
				views = append(views, viewOf(r))
			}
			return writeJSON(e.Stdout, views)
		}
		return writeOrderTable(e.Stdout, recs)
	case "show":
		resp, err := c.GetOrder(ctx, &adminv1.GetOrderRequest{TenantId: tenantID, OrderId: pos[1], Reveal: *reveal})
		if err != nil {
			return orderError(tenantID, pos[1], err)
		}
		rec, err := recordOf(resp.GetOrder())
		if err != nil {
			return err
		}
		progress := progress{code: resp.GetOrder().GetHiperOrderNumber(), stages: resp.GetOrder().GetHiperStages()}
		if asJSON {
			v := viewOf(rec)
			v.HiperCode, v.HiperStages = progress.code, progress.stages
			return writeJSON(e.Stdout, v)
		}
		if err := writeOrder(e.Stdout, rec); err != nil {
			return err
		}
		return writeProgress(e.Stdout, progress)
	}

	req := &adminv1.ResolveOrderRequest{TenantId: tenantID, OrderId: pos[1]}
	if *resend {
		req.Resolution = &adminv1.ResolveOrderRequest_Resend{Resend: true}
	} else {
		req.Resolution = &adminv1.ResolveOrderRequest_HiperOrderId{HiperOrderId: strings.TrimSpace(*hiperID)}
	}
	resp, err := c.ResolveOrder(ctx, req)
	if err != nil {
		return orderError(tenantID, pos[1], err)
	}
	rec, err := recordOf(resp.GetOrder())
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.Stdout, viewOf(rec))
	}
	return writeOrder(e.Stdout, rec)
}

// recordOf is the order-forwarder's record the API sends with an order.
func recordOf(o *adminv1.Order) (*orders.Record, error) {
	var r orders.Record
	if err := json.Unmarshal([]byte(o.GetRecordJson()), &r); err != nil {
		return nil, fmt.Errorf("the admin API's record of order %s: %w", o.GetOrderId(), err)
	}
	return &r, nil
}

// orderError says in one line what an operator can do about a failed
// call on an order.
func orderError(tenantID, orderID string, err error) error {
	switch connect.CodeOf(err) {
	case connect.CodeNotFound:
		return fmt.Errorf("order %q of %s not found (see orders list %s)", orderID, tenantID, tenantID)
	case connect.CodeInvalidArgument:
		var ce *connect.Error
		if errors.As(err, &ce) && strings.Contains(ce.Message(), orders.ErrInvalidHiperID.Error()) {
			return usagef("orders resolve: --hiper-id must be the order's id in Hiper, a UUID such as 34852cf6-f222-4d61-86d1-045a1aee66f4")
		}
	}
	return apiError(err)
}

func stateNames() string {
	names := make([]string, 0, len(orders.States))
	for _, s := range orders.States {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

// viewOf is the record as --json prints it. The record is the admin
// API's: its customer's personal data masked (personal.MaskEvent) unless
// GetOrder was asked to reveal it; masking it here again would blur it
// further (j***@e***.com to j***).
func viewOf(r *orders.Record) orderView {
	v := orderView{Record: r}
	if a, err := r.ApprovalMessage(); err == nil {
		if b, err := protojson.Marshal(a); err == nil {
			v.Approval = b
		}
	}
	if r.Outbox != nil {
		v.Outbox = &outboxView{ID: r.Outbox.ID, Kind: string(r.Outbox.Kind), Published: r.Outbox.Published}
	}
	return v
}

func writeOrderTable(w io.Writer, recs []*orders.Record) error {
	if len(recs) == 0 {
		fmt.Fprintln(w, "no orders")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tSTATE\tHIPER ID\tATTEMPTS\tUPDATED\tNOTE")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.OrderID, r.State, orNone(r.HiperOrderID), r.Attempts,
			r.UpdatedAt.Format(time.RFC3339), clip(note(r), 80))
	}
	return tw.Flush()
}

// note is the one thing worth knowing about an order at a glance.
func note(r *orders.Record) string {
	switch {
	case r.State == orders.StateRejected && len(r.Reasons) > 0:
		codes := make([]string, 0, len(r.Reasons))
		for _, rr := range r.Reasons {
			codes = append(codes, rr.Code)
		}
		return strings.Join(codes, ",")
	case r.Cancel != nil && r.State != orders.StateCancelled:
		return "cancel requested by the store"
	case r.Reason != "":
		return r.Reason
	}
	return r.LastError
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// writeOrder prints the admin API's record, masked as it sent it (viewOf).
func writeOrder(w io.Writer, r *orders.Record) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("tenant", r.Tenant)
	row("order", r.OrderID)
	row("state", r.State)
	row("hiper id", orNone(r.HiperOrderID))
	row("generation", r.Generation)
	row("attempts", r.Attempts)
	if r.Owner != "" {
		row("held by", fmt.Sprintf("%s until %s", r.Owner, r.LeaseUntil.Format(time.RFC3339)))
	}
	if r.Reason != "" {
		row("reason", r.Reason)
	}
	if r.LastError != "" {
		row("last error", r.LastError)
	}
	if !r.SentAt.IsZero() {
		row("sent to Hiper", fmt.Sprintf("%s (attempt %d): %s", r.SentAt.Format(time.RFC3339), r.Attempts, r.SentSummary()))
	}
	if r.Answer != "" {
		row("Hiper answered", r.Answer)
	}
	if r.FailedInHiper() {
		f := r.HiperFailure
		row("failed in Hiper", fmt.Sprintf("%s: %s", f.At.Format(time.RFC3339), orNone(f.Message)))
		row("way out", fmt.Sprintf("once the cause is fixed: hipersync orders resolve %s %s --resend (a new order in Hiper)", r.Tenant, r.OrderID))
	}
	if r.State == orders.StateNeedsReview {
		row("way out", fmt.Sprintf("in Hiper: hipersync orders resolve %s %s --hiper-id <id>", r.Tenant, r.OrderID))
		row("way out", fmt.Sprintf("not in Hiper: hipersync orders resolve %s %s --resend", r.Tenant, r.OrderID))
	}
	for _, rr := range r.Reasons {
		row("problem", fmt.Sprintf("%s %s: %s", rr.Code, rr.Field, rr.Message))
	}
	if r.CancelOrigin != "" {
		row("cancelled by", r.CancelOrigin)
	}
	if c := r.Cancel; c != nil {
		row("cancel requested", fmt.Sprintf("%s (%s)", c.RequestedAt.Format(time.RFC3339), orNone(c.Reason)))
		if c.Error != "" {
			row("cancel error", c.Error)
		}
	}
	if r.Outbox != nil {
		row("last event", fmt.Sprintf("%s %s (published: %v)", r.Outbox.Kind, r.Outbox.ID, r.Outbox.Published))
	}
	if a, err := r.ApprovalMessage(); err == nil {
		row("items", len(a.GetItems()))
		row("customer", a.GetCustomer().GetName())
		row("document", orNone(a.GetCustomer().GetDocument()))
	}
	row("created", r.CreatedAt.Format(time.RFC3339))
	row("updated", r.UpdatedAt.Format(time.RFC3339))
	for _, h := range r.History {
		from := string(h.From)
		if from == "" {
			from = "·"
		}
		row("history", fmt.Sprintf("%s %s → %s by %s: %s", h.At.Format(time.RFC3339), from, h.To, h.By, h.Note))
	}
	return tw.Flush()
}

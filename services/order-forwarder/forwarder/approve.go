package forwarder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

var (
	errTenantBusy = errors.New("the tenant's sending slots are taken")
	// errLeaseSpent is a send whose lease was used up before the POST
	// could start (a slow write of the lease): it is not posted.
	errLeaseSpent = errors.New("not posted: the lease was spent before the call could start")
	// errHeldBack is a send not posted because the answer of the order
	// sent before it on the same slot could not be recorded: two orders of
	// a slot must never be out at Hiper unrecorded at once.
	errHeldBack = errors.New("not posted: the answer of the order before it on the slot could not be recorded")
	// errMovedOn is an answer from Hiper that came back after the order
	// had moved on to another generation. It must not read as a conflict
	// to decide again on: that could send the order again.
	errMovedOn = errors.New("record Hiper's answer: the order moved on meanwhile")
)

// orderEvent is one of the store's order events, which name the order.
type orderEvent interface {
	proto.Message
	GetOrderId() string
}

// decodeOrderEvent decodes m into e and refuses, for good, an event that
// names no order (what says which event, in the error).
func decodeOrderEvent(m *events.Message, e orderEvent, what string) error {
	if err := m.Decode(e); err != nil {
		return err
	}
	if e.GetOrderId() == "" {
		return events.Permanent("missing_order_id", errors.New(what+" without orderId cannot be tracked"))
	}
	return nil
}

// approved handles store.<tenant>.order.approved: it sends the order to
// Hiper once, whatever the number of deliveries, duplicates and replicas.
func (f *Forwarder) approved(ctx context.Context, m *events.Message) (string, error) {
	a := &eventsv1.StoreOrderApproved{}
	if err := decodeOrderEvent(m, a, "an approved order"); err != nil {
		return outError, err
	}
	o := f.newOrder(ctx, m, a.GetOrderId())
	o.step(stepDecoded)
	// A first delivery is most likely a new order: skip reading its record.
	return o.decide(ctx, m.Deliveries <= 1, func(rec *orders.Record, rev uint64) (string, error) {
		return o.approve(ctx, a, rec, rev)
	})
}

// approve decides by the order's state what its approval calls for.
func (o *order) approve(ctx context.Context, a *eventsv1.StoreOrderApproved, rec *orders.Record, rev uint64) (string, error) {
	switch {
	case rec == nil:
		return o.forward(ctx, a, nil, 0, 0)
	case rec.State == orders.StateReceived:
		// The stored approval is the one to send: this delivery may be an
		// operator's resend of it, or a duplicate.
		if stored, err := rec.ApprovalMessage(); err == nil {
			a = stored
		}
		return o.forward(ctx, a, rec, rev, rec.Generation)
	case rec.State == orders.StateRejected && rec.ApprovalHash != orders.ApprovalHashOf(a),
		rec.State == orders.StateFailed:
		// A corrected approval of a rejected order, or a new try of one
		// that never reached Hiper: neither is in Hiper, so it starts over.
		return o.forward(ctx, a, rec, rev, rec.Generation+1)
	case rec.State == orders.StateSending:
		if rec.Leased(o.f.now()) {
			return outWaiting, events.RetryAfter(o.leaseWait(rec), errLeased)
		}
		if err := o.expire(ctx, rec, rev); err != nil {
			return outError, err
		}
		return outNeedsReview, nil
	}
	// Settled (or being cancelled): a duplicate, whose outcome event decide
	// has published if it was still owed.
	if rec.State != orders.StateCancelled && rec.ApprovalHash != "" && rec.ApprovalHash != orders.ApprovalHashOf(a) {
		o.log.Warn("approval differs from the one already handled; ignored", "state", rec.State)
	}
	return outDuplicate, nil
}

// forward validates the order and, when it passes, posts it to Hiper.
func (o *order) forward(ctx context.Context, a *eventsv1.StoreOrderApproved, rec *orders.Record, rev uint64, gen int) (string, error) {
	f := o.f
	t, known := f.dir.Get(o.tenant)
	if known && t.GetState() == brokerv1.TenantState_TENANT_STATE_PAUSED {
		return o.wait(ctx, a, rec, gen, f.cfg.PausedRetry, tenant.ErrPaused)
	}
	if !known {
		return o.notSent(ctx, a, rec, rev, gen, fmt.Errorf("%w: %s", tenant.ErrUnknown, o.tenant), true)
	}
	if size := proto.Size(a); size > f.approvalBudget {
		return o.reject(ctx, a, rec, rev, gen, tooLarge(size, f.approvalBudget))
	}
	v, reasons, err := Validate(ctx, o.tenant, tenant.SettingsOf(t.GetSettings()), f.catalog, a)
	if err != nil {
		return outError, err
	}
	if len(reasons) > 0 {
		return o.reject(ctx, a, rec, rev, gen, reasons)
	}

	// While Hiper fails every call, orders wait for a probe to get through
	// instead of spending their attempts on the outage.
	tk, hold := f.circuits.admit(o.tenant)
	if hold > 0 {
		return o.wait(ctx, a, rec, gen, hold, errOutage)
	}
	defer tk.release()

	// The token first: a token-broker or tenant problem must not leave the
	// order recorded as sending.
	syncing := tenant.Syncs(t.GetState())
	src := f.tokenSource(o.tenant, syncing)
	token, err := o.token(ctx, src, syncing)
	if err != nil {
		if judge(err) == paused {
			return o.wait(ctx, a, rec, gen, f.cfg.PausedRetry, tenant.ErrPaused)
		}
		return o.notSent(ctx, a, rec, rev, gen, fmt.Errorf("get a token: %w", err), tk.failed(err))
	}

	// The tenant's slot is held from recording sending to recording the
	// answer: the span in which a crash leaves an outcome unknown. The
	// previous holder hands it on as soon as its answer's write is on the
	// connection, so this order's sending lands right behind that answer;
	// it is posted only once that answer is recorded (slot.settled).
	s := f.gates.acquire(ctx, o.tenant)
	if s == nil {
		return outWaiting, events.RetryAfter(busyDelay(o.m.Deliveries), errTenantBusy)
	}
	// Within the tenant's pace (Hiper publishes no rate limit); the slot is
	// taken first so that a reserved turn is never spent waiting for it.
	if err := f.pace.Wait(ctx, o.tenant); err != nil {
		s.release()
		return outWaiting, events.RetryAfter(busyDelay(o.m.Deliveries), err)
	}
	o.step(stepSlotTaken)
	released := false
	unlock := func(a *answerWrite) {
		if released {
			return
		}
		released = true
		if a != nil {
			s.handOver(a)
		} else {
			s.release()
		}
	}
	defer unlock(nil)

	r, err := o.start(a, rec, gen)
	if err != nil {
		return outError, err
	}
	now := f.now()
	r.Attempts++
	r.Owner, r.LeaseUntil = f.owner, now.Add(f.cfg.lease()).UTC()
	r.Outbox = nil
	r.SentAt, r.Answer = now.UTC(), ""
	r.Move(orders.StateSending, f.owner, fmt.Sprintf("attempt %d", r.Attempts), now)
	f.calls.Add(1) // before the write: once it lands, the call must be seen through
	defer f.calls.Done()
	o.step(stepSendingWrite)
	srev, err := o.write(ctx, r, rec == nil, rev)
	if err != nil {
		return outError, err
	}
	o.step(stepSendingSaved)

	// From here Hiper may act, so the answer is recorded whatever happens
	// to this delivery: the call and the recording outlive a shutdown (Run
	// waits for them), and the call's own deadline ends before the lease
	// does.
	detached := context.WithoutCancel(ctx)
	var (
		hiperID string
		perr    error
	)
	// The previous holder's answer must be recorded before this order goes
	// out; the wait counts against this order's lease (a context only
	// when there is a wait: mostly the answer is in already).
	var (
		serr      error
		waitedOut bool
	)
	if s.pending() {
		sctx, cancel := context.WithDeadline(detached, r.LeaseUntil.Add(-f.cfg.recordBudget()))
		serr = s.settled(sctx)
		waitedOut = sctx.Err() != nil
		cancel()
	} else {
		serr = s.settled(detached)
	}
	o.step(stepSettled)
	window := f.cfg.callWindow(r.LeaseUntil, f.now())
	switch {
	case serr != nil && !waitedOut:
		perr = fmt.Errorf("%w: %w", errHeldBack, serr)
	case window <= 0 || serr != nil:
		perr = fmt.Errorf("%w (%s left of the lease)", errLeaseSpent, window+f.cfg.recordBudget())
	default:
		pctx, cancel := context.WithTimeout(detached, window)
		sess := f.hiper.Session(&primed{TokenSource: src, first: token})
		hiperID, perr = sess.CreateSalesOrder(pctx, v.Order)
		cancel()
		o.step(stepAnswered)
	}
	rctx, cancel := context.WithTimeout(detached, f.cfg.lease())
	defer cancel()
	return o.answered(rctx, r, srev, v, hiperID, perr, unlock, tk)
}

// token is the tenant's token: the one cached (while the tenant syncs),
// else the broker's, asked within the token call's timeout.
func (o *order) token(ctx context.Context, src hiper.TokenSource, syncing bool) (string, error) {
	if token, ok := o.f.tokens.Cached(o.tenant); ok && syncing {
		return token, nil
	}
	tctx, cancel := context.WithTimeout(ctx, o.f.cfg.tokenTimeout())
	defer cancel()
	return src.Token(tctx)
}

// answered records Hiper's answer to the create, releases the tenant's
// slot (recorded, the answer is safe) and publishes the outcome.
//
// release hands the slot on: with the answer's write, once that is on the
// connection (the next order's sending lands behind it), or with nil when
// it is recorded or not at all.
func (o *order) answered(ctx context.Context, sent *orders.Record, rev uint64, v Validated, hiperID string, perr error, release func(*answerWrite), tk *ticket) (string, error) {
	f := o.f
	var (
		outcome string
		retry   error
	)
	// The circuits learn the answer once (apply may run more than once);
	// own is false for a failure of Hiper's outage, not of the order.
	own := true
	switch {
	case errors.Is(perr, errLeaseSpent), errors.Is(perr, errHeldBack):
		tk.release()
		own = false // the order was not sent: nothing of it failed
	case perr == nil:
		tk.answered()
	case judge(perr) == refused:
		tk.answered()
	case judge(perr) == paused:
		tk.release()
	default:
		own = tk.failed(perr)
	}
	apply := func(r *orders.Record) error {
		now := f.now()
		r.LastError = ""
		r.Answer = answerText(hiperID, perr)
		if perr == nil {
			r.HiperOrderID, r.Reason = hiperID, ""
			r.Products = orderProducts(v.Order)
			r.Move(orders.StateAccepted, f.owner, "Hiper id "+hiperID, now)
			outcome = outAccepted
			return r.Emit(&eventsv1.OrderAccepted{OrderId: o.id, HiperOrderId: hiperID, AcceptedAt: timestamppb.New(now)}, "")
		}
		r.LastError = perr.Error()
		switch judge(perr) {
		case refused:
			r.Reasons = hiperReasons(perr, v.ByEAN)
			r.Move(orders.StateRejected, f.owner, "refused by Hiper", now)
			outcome = outRejected
			return r.Emit(&eventsv1.OrderRejected{OrderId: o.id, Reasons: r.RejectionReasons()}, "")
		case unknown:
			r.Reason = r.ReviewText("O Hiper não confirmou o pedido", r.Answer)
			r.Move(orders.StateNeedsReview, f.owner, "outcome unknown", now)
			outcome = outNeedsReview
			return r.Emit(&eventsv1.OrderNeedsReview{OrderId: o.id, Reason: r.Reason, Code: ReviewOutcomeUnknown}, "")
		case paused:
			r.Attempts-- // a paused tenant's wait is not a failed attempt
			r.Move(orders.StateReceived, f.owner, "tenant paused", now)
			outcome, retry = outWaiting, events.RetryAfter(f.cfg.PausedRetry, perr)
			return nil
		}
		if !own {
			r.Attempts-- // Hiper's outage (or a spent lease, or held back), not the order's failure
			r.Move(orders.StateReceived, f.owner, "not sent, not the order's failure: "+shortError(perr), now)
			outcome, retry = outWaiting, events.RetryAfter(f.cfg.backoff(1, perr), perr)
			return nil
		}
		if r.Attempts >= f.cfg.MaxAttempts {
			outcome = outFailed
			return o.fail(r, perr, now)
		}
		r.Move(orders.StateReceived, f.owner, "not sent: "+shortError(perr), now)
		outcome, retry = outRetry, events.RetryAfter(f.cfg.backoff(r.Attempts, perr), perr)
		return nil
	}
	rec, arev, err := o.recordAnswer(ctx, sent, rev, apply, orders.StateNeedsReview, release)
	release(nil)
	if err != nil {
		if perr == nil {
			o.log.Error("Hiper accepted the order but the answer could not be recorded; it will come back as needs_review",
				"hiper_order_id", hiperID, "error", err)
		}
		return outError, err
	}
	switch outcome {
	case outAccepted:
		f.refreshStock(o, rec.Products)
		f.metrics.forwardSecs.Observe(time.Since(o.m.Published).Seconds())
		o.log.Info("order accepted by Hiper", "hiper_order_id", hiperID, "attempt", rec.Attempts)
	case outRejected:
		o.log.Info("order refused by Hiper", "codes", codes(rec.Reasons))
	case outNeedsReview:
		o.log.Warn("order needs review: Hiper's answer was lost", "error", perr)
	case outFailed:
		o.log.Error("order failed: attempts exhausted before reaching Hiper", "attempts", rec.Attempts, "error", perr)
	default:
		o.log.Info("order not sent; will try again", "attempt", rec.Attempts, "error", perr)
	}
	if err := o.publish(ctx, rec, arev); err != nil {
		return outError, err
	}
	if outcome == outFailed {
		return outcome, events.Permanent(events.ReasonRetriesExhausted, perr)
	}
	return outcome, retry
}

// recordAnswer applies Hiper's answer to the record with compare-and-set.
// The answer is the truth about Hiper, so it is recorded over the state
// another replica wrote when it took this replica's lease for dead
// (takeover); only an order that moved on otherwise is left alone. A
// failing bucket is tried again until the lease would end.
//
// handOver, when not nil, is given the first write once it is on the
// connection and before it is acknowledged, with the answerWrite that says
// when the answer is finally recorded (or cannot be).
func (o *order) recordAnswer(ctx context.Context, sent *orders.Record, rev uint64, apply func(*orders.Record) error, takeover orders.State, handOver func(*answerWrite)) (_ *orders.Record, _ uint64, err error) {
	deadline := sent.LeaseUntil
	cur := sent
	var aw *answerWrite
	defer func() {
		if aw != nil {
			aw.finish(err)
		}
	}()
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		next := *cur
		if err := apply(&next); err != nil {
			return nil, 0, err
		}
		var nrev uint64
		if handOver != nil {
			nrev, err = o.writeQueued(ctx, &next, rev, func() {
				aw = newAnswerWrite()
				o.step(stepAnswerQueued)
				handOver(aw)
			})
			handOver = nil
		} else {
			nrev, err = o.write(ctx, &next, false, rev)
		}
		if err == nil {
			if aw != nil {
				o.step(stepAnswerSaved)
			}
			return &next, nrev, nil
		}
		if errors.Is(err, orders.ErrConflict) {
			c, crev, gerr := o.load(ctx)
			switch {
			case gerr != nil:
				err = gerr
			case c == nil || c.Generation != sent.Generation ||
				!(c.State == sent.State && c.Owner == o.f.owner || c.State == takeover):
				o.log.Error("Hiper answered, but the order moved on meanwhile; answer not recorded",
					"answer", next.State, "hiper_order_id", next.HiperOrderID, "now", stateOf(c))
				return nil, 0, errMovedOn
			default:
				cur, rev = c, crev
				continue
			}
		}
		if o.f.now().Add(wait).After(deadline) {
			return nil, 0, fmt.Errorf("record Hiper's answer: %w", err)
		}
		o.log.Warn("record Hiper's answer failed; trying again", "error", err)
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("record Hiper's answer: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
}

// notSent counts an attempt that failed before the order reached Hiper and
// schedules the next, or fails the order once attempts are exhausted.
// own is false when the failure was Hiper's outage rather than the
// order's: then it spends no attempt.
func (o *order) notSent(ctx context.Context, a *eventsv1.StoreOrderApproved, rec *orders.Record, rev uint64, gen int, cause error, own bool) (string, error) {
	r, err := o.start(a, rec, gen)
	if err != nil {
		return outError, err
	}
	now := o.f.now()
	if own {
		r.Attempts++
	}
	r.LastError = cause.Error()
	if r.Attempts >= o.f.cfg.MaxAttempts {
		if err := o.fail(r, cause, now); err != nil {
			return outError, err
		}
		o.log.Error("order failed: attempts exhausted before reaching Hiper", "attempts", r.Attempts, "error", cause)
		if err := o.settleAndPublish(ctx, r, rec == nil, rev); err != nil {
			return outError, err
		}
		return outFailed, events.Permanent(events.ReasonRetriesExhausted, cause)
	}
	if r.State != orders.StateReceived {
		r.Move(orders.StateReceived, o.f.owner, "not sent: "+shortError(cause), now)
	}
	if _, err := o.write(ctx, r, rec == nil, rev); err != nil {
		return outError, err
	}
	o.log.Info("order not sent; will try again", "attempt", r.Attempts, "error", cause)
	return outRetry, events.RetryAfter(o.f.cfg.backoff(r.Attempts, cause), cause)
}

// fail moves r to failed with its order.failed event.
func (o *order) fail(r *orders.Record, cause error, now time.Time) error {
	r.Reason = fmt.Sprintf("Não foi possível enviar o pedido ao Hiper após %d tentativas; último erro: %s", r.Attempts, shortError(cause))
	r.Move(orders.StateFailed, o.f.owner, "attempts exhausted", now)
	return r.Emit(&eventsv1.OrderFailed{OrderId: o.id, Message: r.Reason, Code: events.ReasonRetriesExhausted}, "")
}

// wait parks the order of a paused tenant, or one waiting out a Hiper
// outage, without spending an attempt: it is recorded as received (so
// `hipersync orders list` shows it) and comes back after delay.
func (o *order) wait(ctx context.Context, a *eventsv1.StoreOrderApproved, rec *orders.Record, gen int, delay time.Duration, cause error) (string, error) {
	if rec == nil {
		r, err := o.start(a, nil, gen)
		if err != nil {
			return outError, err
		}
		r.LastError = cause.Error()
		if _, err := o.write(ctx, r, true, 0); err != nil {
			return outError, err
		}
	}
	return outWaiting, events.RetryAfter(delay, cause)
}

// reject records the problems found and publishes order.rejected; Hiper is
// not called.
func (o *order) reject(ctx context.Context, a *eventsv1.StoreOrderApproved, rec *orders.Record, rev uint64, gen int, reasons []orders.Reason) (string, error) {
	r, err := o.start(a, rec, gen)
	if err != nil {
		return outError, err
	}
	if len(r.Approval) > o.f.approvalBudget {
		r.Approval = nil // too large to keep: its hash tells a corrected approval apart
	}
	r.Reasons = reasons
	r.Move(orders.StateRejected, o.f.owner, fmt.Sprintf("%d problem(s) found before sending", len(reasons)), o.f.now())
	if err := r.Emit(&eventsv1.OrderRejected{OrderId: o.id, Reasons: r.RejectionReasons()}, ""); err != nil {
		return outError, err
	}
	if err := o.settleAndPublish(ctx, r, rec == nil, rev); err != nil {
		return outError, err
	}
	o.log.Info("order rejected before sending", "codes", codes(reasons))
	return outRejected, nil
}

// hiperReasons turns Hiper's refusal into rejection reasons, one per text
// Hiper gave, pointing at the store's field where Hiper names an item.
func hiperReasons(err error, byEAN []bool) []orders.Reason {
	var texts []string
	if re, ok := errors.AsType[*hiper.RejectedError](err); ok {
		texts = re.Errors
		if len(texts) == 0 && re.Message != "" {
			texts = []string{re.Message}
		}
	}
	if len(texts) == 0 {
		texts = []string{shortError(err)}
	}
	isEAN := func(i int) bool { return i >= 0 && i < len(byEAN) && byEAN[i] }
	out := make([]orders.Reason, 0, len(texts))
	for _, t := range texts {
		out = append(out, orders.Reason{Code: CodeHiperRejected, Field: hiperField(t, isEAN), Message: "O Hiper recusou o pedido: " + t})
	}
	return out
}

func codes(rs []orders.Reason) string {
	cs := make([]string, 0, len(rs))
	for _, r := range rs {
		cs = append(cs, r.Code)
	}
	return strings.Join(cs, ",")
}

func stateOf(r *orders.Record) string {
	if r == nil {
		return "absent"
	}
	return string(r.State)
}

// answerText says, for a person, what came back from a create: Hiper's id,
// or the status and a bounded part of the page, or that no answer came.
func answerText(hiperID string, err error) string {
	if err == nil {
		return "HTTP 200, id " + hiperID
	}
	he, ok := errors.AsType[*hiper.Error](err)
	if !ok {
		return shortError(err)
	}
	var what string
	switch {
	case he.Status == 0 && errors.Is(err, context.DeadlineExceeded):
		what = "nenhuma resposta dentro do prazo"
	case he.Status == 0:
		what = "nenhuma resposta (conexão interrompida depois do envio)"
	default:
		what = fmt.Sprintf("HTTP %d", he.Status)
	}
	return what + " — " + shortError(err)
}

// shortError keeps an error's text to a size fit for an event.
func shortError(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

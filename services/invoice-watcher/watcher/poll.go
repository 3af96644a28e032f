package watcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
)

// tokenTimeout bounds getting a token from token-broker.
const tokenTimeout = 10 * time.Second

// rewriteAfter is how old a followed order's record may get before a poll
// rewrites it, so the bucket's TTL never removes an order being followed.
const rewriteAfter = 24 * time.Hour

// Dead-letter reason codes.
const (
	codeBadAnswer    = "hiper_bad_answer"    // unreadable, refused, or not found
	codeUnexpected   = "hiper_unexpected"    // readable but makes no sense
	codeUnknownEvent = "hiper_unknown_event" // an event type Hiper does not document
)

// poll is one order's turn: it reads the order's record and, when the order
// is due and its tenant may call, asks Hiper about it and publishes what is
// new.
func (w *Watcher) poll(ctx context.Context, msg jetstream.Msg) turn {
	var t task
	if err := json.Unmarshal(msg.Data(), &t); err != nil || t.Tenant == "" || t.OrderID == "" {
		w.log.Error("drop unreadable poll task", "subject", msg.Subject(), "error", err)
		return finished
	}
	log := w.log.With("tenant", t.Tenant, "order_id", t.OrderID)
	if subject, err := taskSubject(w.ns, t.Tenant, t.OrderID); err == nil && subject != msg.Subject() {
		// Queued by the previous version under the order's legacy key
		// (records.migrate): queued again under its key, due at once.
		if err := w.queueTask(ctx, t, "watch-rekeyed"); err != nil {
			log.Warn("move poll task to the order's key", "error", err)
			return later(jitter(retrySoon))
		}
		return finished
	}
	rec, rev, err := w.records.get(ctx, t.Tenant, t.OrderID)
	switch {
	case errors.Is(err, errNotFound):
		log.Warn("drop poll task of an order without a record")
		return finished
	case err != nil:
		log.Warn("read order record", "error", err)
		return later(jitter(retrySoon))
	case rec.Final != "" || !rec.Accepted():
		return finished
	}
	var delivered uint64
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	return w.follow(ctx, log.With("hiper_order_id", rec.HiperOrderID), rec, rev, delivered)
}

// turnSkew is how far apart the replicas' clocks may be: a task delivered
// that much before the time of the turn it booked still takes it.
const turnSkew = time.Second

// follow polls rec's order (rev its revision) unless it must wait, and
// decides when its next turn is; delivered is the task's delivery count.
func (w *Watcher) follow(ctx context.Context, log *slog.Logger, rec *order.Record, rev, delivered uint64) turn {
	now := w.now()
	t, known := w.dir.Get(rec.Tenant)
	maxAge := w.maxAge(t)
	if !known || !tenant.Syncs(t.GetState()) {
		w.m.waits.WithLabelValues(waitInactive).Inc()
		return w.expireOr(ctx, log, rec, now, maxAge, later(jitter(w.cfg.PausedRetry)))
	}
	// Hiper takes a moment to process a new order: its first poll waits
	// until the schedule's first interval has passed.
	if since := now.Sub(rec.ChangedAt); delivered == 1 && since < w.cfg.Schedule.Min {
		w.m.waits.WithLabelValues(waitNotDue).Inc()
		return later(w.cfg.Schedule.Min - since)
	}
	// A due order whose store's calls are spent books the store's next free
	// call and comes back for it; one that booked its turn takes it,
	// whatever the pace says now (its call was paid for when booked).
	if !rec.Booked(delivered, now, turnSkew) {
		if d := w.pace.Book(rec.Tenant); d > 0 {
			w.m.waits.WithLabelValues(waitPaced).Inc()
			w.m.turnWait.Observe(d.Seconds())
			return w.bookTurn(ctx, log, rec, delivered, now, d)
		}
	}

	capture := &bodyCapture{}
	st, err := w.status(withCapture(ctx, capture), rec)
	now = w.now()
	if err != nil {
		next, retrying := w.pollFailed(ctx, log, rec, err, capture)
		if retrying {
			return next
		}
		return w.expireOr(ctx, log, rec, now, maxAge, next)
	}
	policy := order.Policy{CancelGrace: w.cfg.CancelGrace, MaxAge: maxAge}
	obs, err := order.Observe(rec, st, now, policy)
	if err == nil && len(obs.Events) > 0 {
		// JetStream may hand one task to two replicas at once (a
		// redelivery after AckWait to a replica that stopped answering, a
		// replica starting: see take). Both poll, but the record is read
		// again before anything goes out: the poll that published and
		// recorded first leaves the other nothing to publish. Only two
		// polls between this read and their record write at once publish
		// twice, and the stream's duplicate window drops the second. The
		// record write re-reads the record and keeps the later of the two
		// answers (Record.Apply), whichever poll writes last.
		cur, curRev, gerr := w.records.get(ctx, rec.Tenant, rec.OrderID)
		if gerr != nil {
			log.Warn("read order record again; polling again soon", "error", gerr)
			return later(jitter(retrySoon))
		}
		if curRev != rev {
			rec = cur
			obs, err = order.Observe(rec, st, now, policy)
		}
	}
	if err != nil {
		w.report.failed(rec.Tenant, now, err)
		w.m.polls.WithLabelValues(pollBadAnswer).Inc()
		w.deadLetter(ctx, log, rec, codeUnexpected, err, capture.body(), capture.headers())
		return w.expireOr(ctx, log, rec, now, maxAge, later(jitter(w.cfg.Schedule.Max)))
	}
	if len(obs.Unknown) > 0 {
		w.deadLetter(ctx, log, rec, codeUnknownEvent, errUnknownEvents(obs.Unknown), capture.body(), capture.headers())
	}
	outcome := pollUnchanged
	if obs.Changed {
		outcome = pollChanged
	}
	w.m.polls.WithLabelValues(outcome).Inc()
	return w.conclude(ctx, log, rec, obs, now)
}

// bookTurn records in rec the turn its order booked, d from now, so that
// whichever replica its task goes to next polls it then: the task comes
// back at the turn, or at the end of the quantum it falls in (align), and
// its poll goes without asking the pace again. A store's orders so queue
// for its calls first come, first served, none passed over however many
// are due (docs/invoices.md, "A store with more orders than its pace").
func (w *Watcher) bookTurn(ctx context.Context, log *slog.Logger, rec *order.Record, delivered uint64, now time.Time, d time.Duration) turn {
	_, err := w.records.update(ctx, rec.Tenant, rec.OrderID, func(cur *order.Record) (*order.Record, error) {
		if cur == nil || cur.Final != "" {
			return nil, nil
		}
		cur.Turn = &order.Turn{At: now.Add(d).UTC(), Delivery: delivered}
		return cur, nil
	})
	if err != nil {
		// The call stays booked on this replica's pace, unknown to the
		// replicas: the order books again at its next delivery.
		log.Warn("record the order's booked turn", "error", err)
	}
	return later(d)
}

// expireOr ends the watch of an order past its maximum age that could not
// be polled (its tenant inactive, Hiper's answer unusable); a younger one
// takes its next turn.
func (w *Watcher) expireOr(ctx context.Context, log *slog.Logger, rec *order.Record, now time.Time, maxAge time.Duration, next turn) turn {
	if obs, ok := order.Expire(rec, now, maxAge); ok {
		return w.conclude(ctx, log, rec, obs, now)
	}
	return next
}

// maxAge is how long the tenant's orders are followed.
func (w *Watcher) maxAge(t *brokerv1.Tenant) time.Duration {
	if w.cfg.MaxAge > 0 {
		return w.cfg.MaxAge
	}
	return tenant.SettingsOf(t.GetSettings()).OrderWatchMaxAge()
}

// status asks Hiper for the order's state with the tenant's token.
func (w *Watcher) status(ctx context.Context, rec *order.Record) (hiper.OrderStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout+w.cfg.HiperTimeout)
	defer cancel()
	return w.hiper.Session(w.tokens.Source(rec.Tenant)).SalesOrderStatus(ctx, rec.HiperOrderID)
}

// conclude publishes obs's events, records what went out, and says when the
// order's next turn is, if it has one.
func (w *Watcher) conclude(ctx context.Context, log *slog.Logger, rec *order.Record, obs order.Observation, now time.Time) turn {
	published := 0
	for _, ev := range obs.Events {
		subject := w.ns.HiperSubject(rec.Tenant, ev.Kind)
		dup, err := w.pub.Publish(ctx, subject, ev.ID, ev.Message, events.WithEventSubject(rec.OrderID))
		if err != nil {
			log.Warn("publish order event", "kind", ev.Kind, "error", err)
			break
		}
		published++
		if dup {
			w.m.duplicates.WithLabelValues(string(ev.Kind)).Inc()
			log.Info("order event was published already", "kind", ev.Kind, "event_id", ev.ID)
			continue
		}
		w.m.published.WithLabelValues(string(ev.Kind)).Inc()
		if !ev.HiperAt.IsZero() {
			w.m.publishDelay.WithLabelValues(string(ev.Kind)).Observe(max(w.now().Sub(ev.HiperAt), 0).Seconds())
			if ev.Kind == events.KindInvoiceIssued {
				w.m.invoiceAge.Observe(max(ev.HiperAt.Sub(rec.AcceptedAt), 0).Seconds())
			}
		}
		log.Info("order event published", "kind", ev.Kind, "event_id", ev.ID)
	}
	w.report.polled(rec.Tenant, now, published)
	stale := now.Sub(rec.WrittenAt) >= rewriteAfter
	after := rec
	if obs.Changed || obs.CancelSeen || published > 0 || obs.Final != "" || stale {
		cur, err := w.records.update(ctx, rec.Tenant, rec.OrderID, func(cur *order.Record) (*order.Record, error) {
			if cur == nil {
				return nil, nil
			}
			cur.Apply(obs, published, now)
			cur.Turn = nil // taken, or never to be
			cur.WrittenAt = now.UTC()
			return cur, nil
		})
		if err != nil || cur == nil {
			log.Warn("record order state; polling again soon", "error", err)
			return later(jitter(retrySoon))
		}
		after = cur
	}
	if published < len(obs.Events) {
		return later(jitter(retrySoon))
	}
	if after.Final != "" {
		w.m.finished.WithLabelValues(string(after.Final)).Inc()
		log.Info("order no longer followed", "final", after.Final, "cancel_origin", obs.CancelOrigin)
		return finished
	}
	next := w.cfg.Schedule.Next(after, now)
	if obs.Retry > 0 {
		next = min(next, obs.Retry)
	}
	return later(next)
}

// pollFailed decides what a failed poll means: a paused or disconnected
// tenant waits; a failure worth retrying is retried later (retrying is
// true); anything else is an answer that makes no sense, dead-lettered with
// its body, and the order is polled again at the schedule's ceiling.
func (w *Watcher) pollFailed(ctx context.Context, log *slog.Logger, rec *order.Record, err error, capture *bodyCapture) (next turn, retrying bool) {
	switch {
	case errors.Is(err, tenant.ErrPaused), errors.Is(err, tenant.ErrNotConnected),
		errors.Is(err, tenant.ErrKeyRefused), errors.Is(err, tenant.ErrUnknown):
		w.m.polls.WithLabelValues(pollTenantGone).Inc()
		log.Info("tenant cannot call Hiper; the order waits", "error", err)
		return later(jitter(w.cfg.PausedRetry)), false
	case hiper.IsTransient(err), errors.Is(err, hiper.ErrUnauthorized), errors.Is(err, brokerclient.ErrUnavailable),
		errors.Is(err, tenant.ErrHiperUnavailable), errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
		w.m.polls.WithLabelValues(pollTransient).Inc()
		w.report.failed(rec.Tenant, w.now(), err)
		d := w.cfg.RetryDelay
		if ra, ok := hiper.RetryAfter(err); ok {
			d = max(ra, time.Second)
		}
		log.Info("poll failed; retrying later", "error", err, "retry_in", d)
		return later(jitter(d)), true
	}
	w.m.polls.WithLabelValues(pollBadAnswer).Inc()
	w.report.failed(rec.Tenant, w.now(), err)
	body := capture.body()
	if he, ok := errors.AsType[*hiper.Error](err); ok && len(he.Body) > 0 {
		body = he.Body
	}
	w.deadLetter(ctx, log, rec, codeBadAnswer, err, body, capture.headers())
	return later(jitter(w.cfg.Schedule.Max)), false
}

// deadLetter records a Hiper answer that could not be used, once per order
// and distinct answer: the same bad answer poll after poll is recorded the
// first time only.
func (w *Watcher) deadLetter(ctx context.Context, log *slog.Logger, rec *order.Record, code string, cause error, body []byte, headers map[string]string) {
	sum := sha256.Sum256(append([]byte(code+"\x00"), body...))
	digest := hex.EncodeToString(sum[:8])
	if rec.BadAnswer == digest {
		log.Warn("Hiper's answer is still unusable", "reason_code", code, "error", cause)
		return
	}
	subject, _ := taskSubject(w.ns, rec.Tenant, rec.OrderID)
	if headers == nil {
		headers = map[string]string{}
	}
	headers["hiper-order-id"] = rec.HiperOrderID
	headers["order-id"] = rec.OrderID
	err := events.DeadLetterBody(ctx, w.js, w.ns, events.Body{
		// The previous bad answer's digest in the id names the change: an
		// answer back to an earlier bad one is recorded again.
		ID:     rec.Tenant + ":" + rec.OrderID + ":" + code + ":" + rec.BadAnswer + ":" + digest,
		Tenant: rec.Tenant, Consumer: ConsumerName,
		Subject: subject, Code: code, Cause: cause, Headers: headers, Data: body,
	})
	if err != nil {
		log.Error("dead-letter Hiper's answer", "reason_code", code, "error", err, "cause", cause)
		return
	}
	w.m.deadLetters.WithLabelValues(code).Inc()
	log.Warn("Hiper's answer dead-lettered; the order is polled again later", "reason_code", code, "error", cause)
	if _, err := w.records.update(ctx, rec.Tenant, rec.OrderID, func(cur *order.Record) (*order.Record, error) {
		if cur == nil || cur.BadAnswer == digest {
			return nil, nil
		}
		cur.BadAnswer = digest
		return cur, nil
	}); err != nil {
		log.Warn("record dead-lettered answer", "error", err)
	}
}

type unknownEventsError []int

func (e unknownEventsError) Error() string {
	s := "events of types Hiper does not document:"
	for _, t := range e {
		s += " " + strconv.Itoa(t)
	}
	return s
}

func errUnknownEvents(types []int) error { return unknownEventsError(types) }

package watcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
)

// The poll queue: one task message per order being followed, on a
// work-queue stream of its own. The task is the order's timer: after each
// poll it goes back to the stream with a delay (a NAK with delay) that the
// schedule computes, and it is removed (acknowledged) when the order is
// final. JetStream delivers a message to one replica at a time until it is
// settled or AckWait runs out: a replica that dies holding one loses it
// after AckWait, and one gone silent while it polls may find another
// polling the same order (see take). At most one task exists per order: the
// stream keeps one message per subject and refuses a second.
const (
	// TaskStream is the stream's name before the namespace.
	TaskStream = "INVOICE_WATCH"
	// taskRoot is the first token of task subjects,
	// invoicewatch.<tenant>.<order key>.
	taskRoot = "invoicewatch"
	// PollConsumer is the durable consumer every replica shares.
	PollConsumer = "invoice-watcher-polls"
)

// task is the body of a poll task.
type task struct {
	Tenant  string `json:"tenant"`
	OrderID string `json:"orderId"`
}

// errCodeStoreFailed is JetStream's "store failed" API error, which carries
// "maximum messages per subject exceeded" when a task exists already.
const errCodeStoreFailed jetstream.ErrorCode = 10077

func ensureTaskStream(ctx context.Context, js jetstream.JetStream, ns events.Namespace) (jetstream.Stream, error) {
	return events.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        ns.Stream(TaskStream),
		Description: "hipersync invoice-watcher: one poll task per order followed in Hiper",
		Subjects:    []string{ns.ServiceSubject(taskRoot, ">")},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    ns.StreamReplicas(),
		// One task per order: a second publish for an order that has one is
		// refused, whatever the duplicate window.
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		Duplicates:           events.DefaultDuplicateWindow,
		MaxBytes:             ns.BucketMaxBytes(),
	})
}

func taskSubject(ns events.Namespace, tenantID, orderID string) (string, error) {
	tok, err := tenant.OrderToken(orderID)
	if err != nil {
		return "", err
	}
	return ns.ServiceSubject(taskRoot, tenantID, tok), nil
}

// ensureTask puts the order's poll task in the queue unless it is there.
func (w *Watcher) ensureTask(ctx context.Context, r *order.Record) error {
	id := events.Kind("watch")
	if r.Round > 0 {
		// A resent order's new Hiper order: its task is not the first's,
		// which may still be in the duplicate window.
		id += events.Kind("." + strconv.Itoa(r.Round))
	}
	return w.queueTask(ctx, task{Tenant: r.Tenant, OrderID: r.OrderID}, id)
}

// queueTask puts t in the queue unless its order has a task there; id
// names the publish in the stream's duplicate window.
func (w *Watcher) queueTask(ctx context.Context, t task, id events.Kind) error {
	subject, err := taskSubject(w.ns, t.Tenant, t.OrderID)
	if err != nil {
		return err
	}
	body, err := json.Marshal(t)
	if err != nil {
		return err
	}
	h := nats.Header{}
	h.Set(events.HeaderMsgID, order.EventID(t.Tenant, t.OrderID, id))
	_, err = w.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: h, Data: body}, jetstream.WithExpectStream(w.ns.Stream(TaskStream)))
	var ae *jetstream.APIError
	if errors.As(err, &ae) && ae.ErrorCode == errCodeStoreFailed && strings.Contains(ae.Description, "maximum messages per subject") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue poll task of %s/%s: %w", t.Tenant, t.OrderID, err)
	}
	return nil
}

// turn is what becomes of an order's task after its turn: removed (the
// order is final, or gone), or back in the queue for a while.
type turn struct {
	done  bool
	after time.Duration
}

var finished = turn{done: true}

func later(d time.Duration) turn { return turn{after: max(d, 10*time.Millisecond)} }

// jitter spreads d by ±10%, so orders that failed together do not come
// back together.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// retrySoon is the wait after a failure to publish or to record: short, so
// that an event that went out but was not recorded is published again
// within the duplicate window, where the stream drops it.
const retrySoon = 5 * time.Second

// runPolls gives each order's task, when it comes due, to take, at most
// Concurrency at once, until ctx is done. It then stops taking tasks, lets
// the polls in progress finish for the grace period and hands back the
// rest (events.Pull).
func (w *Watcher) runPolls(ctx context.Context) error {
	return events.Pull(ctx, w.js, events.PullConfig{
		Stream: w.ns.Stream(TaskStream),
		Consumer: jetstream.ConsumerConfig{
			Durable:       PollConsumer,
			Description:   "hipersync invoice-watcher: orders due for a poll",
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       w.cfg.AckWait,
			// A task comes back after every poll until its order is final:
			// it is never given up on, and every task waiting for its delay
			// counts as pending.
			MaxDeliver:    -1,
			MaxAckPending: -1,
		},
		Concurrency: w.cfg.Concurrency,
		GracePeriod: w.cfg.GracePeriod,
		Log:         w.log,
	}, w.take)
}

// take runs one order's turn and puts its task back or removes it.
//
// JetStream may hand a replica a task it is polling already: a replica
// starting (its consumer update, its first pulls) has been seen to make the
// server deliver the newest pending task again, as a first delivery, while
// its redelivery is in a poll (TestRestartMidWay, nats-server 2.15). A
// task already in a poll here is left alone: the poll holding it settles
// the task (the server tracks a task by its stream sequence, whichever
// delivery settles it). Across replicas nothing keeps two polls of one
// order apart; the record read again before publishing (follow) keeps the
// second from publishing what the first did (TestOneTaskOnTwoReplicas).
func (w *Watcher) take(ctx context.Context, d *events.Delivery) {
	msg := d.Msg()
	if !w.polling.enter(msg.Subject()) {
		w.m.waits.WithLabelValues(waitPolling).Inc()
		w.log.Info("poll task delivered while its order is being polled; left to that poll", "subject", msg.Subject())
		return
	}
	defer w.polling.leave(msg.Subject())
	t := w.poll(ctx, msg)
	if !d.Claim() {
		return // the drain handed it back
	}
	var err error
	if t.done {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = msg.DoubleAck(actx)
		cancel()
	} else {
		err = msg.NakWithDelay(w.align(t.after))
	}
	if err != nil {
		w.log.Warn("settle poll task; it comes back after the ack wait", "subject", msg.Subject(), "error", err)
	}
}

// align stretches a task's delay so that it ends on a whole multiple of the
// quantum (a 48th of the schedule's ceiling, at most 5 s; every replica
// computes the same instants). JetStream looks through all of a consumer's
// waiting messages whenever the earliest delay ends, and soon after every
// delayed NAK: with delays ending together, the tasks come back, are polled
// and NAKed together, and one scan serves them all. With 100,000 open
// orders that takes the server from half a core to 2 % (docs/invoices.md).
func (w *Watcher) align(d time.Duration) time.Duration {
	q := w.quantum
	if q <= 0 {
		return d
	}
	now := time.Now()
	due := now.Add(d)
	end := due.Truncate(q)
	if end.Before(due) {
		end = end.Add(q)
	}
	return end.Sub(now)
}

// inPoll is the set of tasks (by subject) a replica is polling.
type inPoll struct {
	mu   sync.Mutex
	subj map[string]struct{}
}

// enter marks subject's task in a poll; false when it is already.
func (p *inPoll) enter(subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.subj[subject]; ok {
		return false
	}
	if p.subj == nil {
		p.subj = map[string]struct{}{}
	}
	p.subj[subject] = struct{}{}
	return true
}

func (p *inPoll) leave(subject string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.subj, subject)
}

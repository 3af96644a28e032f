package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/backoff"
)

// PullConfig is a pull loop over a durable consumer of any stream. Consume
// runs one over the event streams; a service with a work queue of its own
// (the invoice-watcher's poll tasks) runs one with Pull.
type PullConfig struct {
	// Stream is the stream's full name, namespace included.
	Stream string
	// Consumer is the durable consumer the loop creates (or updates) and
	// pulls from; every replica uses the same one.
	Consumer jetstream.ConsumerConfig
	// Concurrency bounds the deliveries worked on at once (default
	// DefaultConcurrency).
	Concurrency int
	// GracePeriod is how long a draining loop lets deliveries in progress
	// finish before it hands them back and cancels their context.
	GracePeriod time.Duration
	// Log receives the loop's warnings; nil discards them.
	Log *slog.Logger

	fetchWait  time.Duration
	onHandBack func(jetstream.Msg)
}

// Work handles one delivery and settles it (ack, nak, term), after Claim
// returned true: false means the drain has handed the message back already.
// While it runs the loop sends the server a heartbeat every AckWait/3. Its
// ctx outlives the loop's by the grace period.
type Work func(ctx context.Context, d *Delivery)

// Delivery is one in-flight message; exactly one of its Work's outcome and
// the drain's hand-back settles it.
type Delivery struct {
	msg     jetstream.Msg
	mu      sync.Mutex
	settled bool
}

// Msg is the message delivered.
func (d *Delivery) Msg() jetstream.Msg { return d.msg }

// Claim reports whether the caller is the one to settle d: true once, and
// never after the drain handed d back.
func (d *Delivery) Claim() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settled {
		return false
	}
	d.settled = true
	return true
}

func (d *Delivery) isSettled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.settled
}

// Pull creates or updates cfg's durable consumer and gives each message to
// work, at most Concurrency at once, until ctx is done. Then it drains: it
// stops fetching, lets work in progress finish for the grace period, hands
// the rest back to the stream, cancels their context and waits for them,
// and returns nil. It pulls no more messages than it has free slots, so no
// message waits in a buffer while its AckWait runs. A failing pull is
// retried with backoff, and a consumer someone deleted is put back. It
// returns an error only when the loop cannot start or the NATS connection
// is closed.
func Pull(ctx context.Context, js jetstream.JetStream, cfg PullConfig, work Work) error {
	cons, err := EnsureConsumer(ctx, js, cfg.Stream, cfg.Consumer)
	if err != nil {
		return err
	}
	return pull(ctx, js, cons, cfg, work)
}

func pull(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, cfg PullConfig, work Work) error {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.fetchWait <= 0 {
		cfg.fetchWait = defaultFetchWait
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Log = cfg.Log.With("consumer", cfg.Consumer.Durable, "stream", cfg.Stream)
	// Work outlives ctx by the grace period, so its context is detached
	// from it and cancelled by the drain.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	p := &puller{
		js:       js,
		cfg:      cfg,
		work:     work,
		cons:     cons,
		slots:    make(chan struct{}, cfg.Concurrency),
		jobs:     make(chan *Delivery),
		workCtx:  workCtx,
		inflight: make(map[*Delivery]struct{}),
	}
	// One long-lived worker per slot: a goroutine per message would grow
	// a fresh stack for every handler run.
	var workers sync.WaitGroup
	for range cfg.Concurrency {
		p.slots <- struct{}{}
		workers.Go(p.worker)
	}
	err := p.run(ctx)
	p.drain(cancelWork)
	close(p.jobs)
	workers.Wait()
	return err
}

type puller struct {
	js   jetstream.JetStream
	cfg  PullConfig
	work Work
	cons jetstream.Consumer

	// slots holds a token per free worker.
	slots chan struct{}
	// jobs hands a delivery to a free worker.
	jobs    chan *Delivery
	workCtx context.Context
	// wg counts the deliveries being worked on.
	wg sync.WaitGroup

	mu       sync.Mutex
	inflight map[*Delivery]struct{}
}

func (p *puller) name() string { return p.cfg.Consumer.Durable }

func (p *puller) run(ctx context.Context) error {
	var failures int
	for {
		n, ok := p.reserve(ctx)
		if !ok {
			return nil
		}
		err := p.fetch(ctx, n)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			failures = 0
			continue
		}
		if errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("fetch messages for %s: %w", p.name(), err)
		}
		failures++
		p.cfg.Log.Warn("fetch messages failed; retrying", "error", err, "failures", failures)
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
			errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat) {
			// Someone deleted the consumer (or the server lost it): put it
			// back so the service heals without a restart. A request that
			// reached no consumer is not answered at all, so a missed
			// heartbeat may mean the same; putting back a consumer that
			// exists changes nothing.
			if cons, cerr := p.js.CreateOrUpdateConsumer(ctx, p.cfg.Stream, p.cfg.Consumer); cerr == nil {
				p.cons = cons
			} else if ctx.Err() == nil {
				p.cfg.Log.Warn("recreate consumer failed", "error", cerr)
			}
		}
		if !backoff.Sleep(ctx, backoff.Restart.Step(failures+1)) {
			return nil
		}
	}
}

// reserve takes at least one free slot, waiting for it, and every other
// slot free right now.
func (p *puller) reserve(ctx context.Context) (int, bool) {
	select {
	case <-ctx.Done():
		return 0, false
	case <-p.slots:
	}
	n := 1
	for n < cap(p.slots) {
		select {
		case <-p.slots:
			n++
		default:
			return n, true
		}
	}
	return n, true
}

func (p *puller) release(n int) {
	for range n {
		p.slots <- struct{}{}
	}
}

// fetch pulls up to n messages and starts work on each as it arrives.
func (p *puller) fetch(ctx context.Context, n int) error {
	fctx, cancel := context.WithTimeout(ctx, p.cfg.fetchWait)
	defer cancel()
	// The server answers a waiting request with heartbeats; none means no
	// consumer took the request (deleted while no request of ours waited,
	// so nobody told us) or the server is gone.
	batch, err := p.cons.Fetch(n, jetstream.FetchContext(fctx), jetstream.FetchHeartbeat(p.cfg.fetchWait/4))
	if err != nil {
		p.release(n)
		return err
	}
	got := 0
	for msg := range batch.Messages() {
		got++
		if ctx.Err() != nil {
			// Arrived while draining: hand it straight to another replica
			// rather than let it wait out AckWait.
			_ = msg.Nak()
			p.release(1)
			continue
		}
		p.dispatch(msg)
	}
	p.release(n - got)
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// dispatch hands msg to a worker; the slot reserved for it guarantees one
// is free, or about to be.
func (p *puller) dispatch(msg jetstream.Msg) {
	d := &Delivery{msg: msg}
	p.mu.Lock()
	p.inflight[d] = struct{}{}
	p.mu.Unlock()
	p.wg.Add(1)
	p.jobs <- d
}

func (p *puller) worker() {
	for d := range p.jobs {
		p.handle(d)
	}
}

func (p *puller) handle(d *Delivery) {
	defer p.wg.Done()
	defer p.release(1)
	defer func() {
		p.mu.Lock()
		delete(p.inflight, d)
		p.mu.Unlock()
	}()
	stop := p.heartbeat(d)
	defer stop()
	p.work(p.workCtx, d)
}

// heartbeat tells the server the message is being worked on every AckWait/3
// until stop is called or the message is settled, so slow work does not
// hand it to another replica. A timer, not a goroutine, waits for each
// beat: most work ends before the first.
func (p *puller) heartbeat(d *Delivery) (stop func()) {
	every := max(p.cfg.Consumer.AckWait/3, time.Millisecond)
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	beat := func() {
		if d.isSettled() {
			return
		}
		// After a settle the client sends nothing (ErrMsgAlreadyAckd).
		if err := d.msg.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			p.cfg.Log.Debug("send in-progress heartbeat", "error", err)
		}
		mu.Lock()
		if !stopped {
			t.Reset(every)
		}
		mu.Unlock()
	}
	mu.Lock()
	t = time.AfterFunc(every, beat)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}

// drain waits for work in progress up to the grace period, then hands its
// messages back, cancels it and waits for it to return.
func (p *puller) drain(cancelWork context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(max(p.cfg.GracePeriod, 0))
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
	}
	p.mu.Lock()
	pending := make([]*Delivery, 0, len(p.inflight))
	for d := range p.inflight {
		pending = append(pending, d)
	}
	p.mu.Unlock()
	// Claim before cancelling: work failing on its cancelled context must
	// not count as a failed delivery (nor, on the last one, be
	// dead-lettered).
	handedBack := 0
	for _, d := range pending {
		if d.Claim() {
			if err := d.msg.Nak(); err != nil {
				p.cfg.Log.Warn("hand back message", "error", err)
			}
			if p.cfg.onHandBack != nil {
				p.cfg.onHandBack(d.msg)
			}
			handedBack++
		}
	}
	cancelWork()
	if handedBack > 0 {
		p.cfg.Log.Warn("grace period expired; handed in-flight messages back", "count", handedBack, "grace", p.cfg.GracePeriod)
	}
	<-done
}

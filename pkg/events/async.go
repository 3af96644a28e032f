package events

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// AsyncPublisher publishes messages to JetStream streams without waiting
// for each acknowledgement, for bulk writers (the pollers' initial sync: a
// hundred thousand events and as many key-value writes). It does what
// jetstream's PublishMsgAsync does, at a fraction of its cost per message:
// a plain publish with a reply subject on the core connection, the
// acknowledgement read without encoding/json (a tenth of the catalog
// poller's CPU went to parsing acks), and no future, channel or timer per
// message: the messages of a Batch are awaited together. As there: at most
// maxInFlight messages wait for their acknowledgement (Publish blocks
// beyond), a "no responders" (the stream has no leader for a moment) is
// sent again twice, 250ms apart, and a reconnect fails what was in flight
// with nats.ErrDisconnected. Safe for concurrent use.
type AsyncPublisher struct {
	nc     *nats.Conn
	window chan struct{}

	mu      sync.Mutex
	sub     *nats.Subscription
	prefix  string
	next    uint64
	pending map[uint64]inFlight
}

// inFlight is one message waiting for its acknowledgement.
type inFlight struct {
	batch   *Batch
	index   int
	msg     *nats.Msg
	retries int
}

// noResponderRetries and noResponderWait are jetstream's defaults
// (DefaultPubRetryAttempts, DefaultPubRetryWait).
const (
	noResponderRetries = 2
	noResponderWait    = 250 * time.Millisecond
)

// NewAsyncPublisher returns an AsyncPublisher on nc that keeps at most
// maxInFlight messages unacknowledged.
func NewAsyncPublisher(nc *nats.Conn, maxInFlight int) *AsyncPublisher {
	return &AsyncPublisher{nc: nc, window: make(chan struct{}, max(maxInFlight, 1)), pending: map[uint64]inFlight{}}
}

// Batch is a set of messages published together and awaited together.
// Not safe for concurrent use.
type Batch struct {
	a *AsyncPublisher
	// Guarded by a.mu.
	outstanding int
	stored      int
	failures    []Failure
	waiting     bool
	done        chan struct{}
	sent        int
}

// Failure is a message of a Batch that was not stored.
type Failure struct {
	// Index is the message's place in its Batch, from 0.
	Index int
	Err   error
}

// NewBatch starts a batch of messages.
func (a *AsyncPublisher) NewBatch() *Batch { return &Batch{a: a, done: make(chan struct{})} }

// Len is how many messages were published in the batch.
func (b *Batch) Len() int { return b.sent }

// Publish sends m (whose Reply must be empty) to its stream; Wait tells
// whether it was stored. m is the batch's from then on: its Reply is set,
// and it is sent again as it is after a "no responders". It blocks while
// maxInFlight messages wait for their acknowledgement, until ctx ends.
func (b *Batch) Publish(ctx context.Context, m *nats.Msg) error {
	if m.Reply != "" {
		return jetstream.ErrAsyncPublishReplySubjectSet
	}
	a := b.a
	select {
	case a.window <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.mu.Lock()
	if err := a.listen(); err != nil {
		a.mu.Unlock()
		<-a.window
		return err
	}
	a.next++
	id := a.next
	a.pending[id] = inFlight{batch: b, index: b.sent, msg: m}
	b.outstanding++
	b.sent++
	m.Reply = a.prefix + strconv.FormatUint(id, 36)
	a.mu.Unlock()
	if err := a.nc.PublishMsg(m); err != nil {
		a.mu.Lock()
		if _, ok := a.pending[id]; ok {
			delete(a.pending, id)
			b.outstanding--
			b.sent--
			<-a.window
		}
		m.Reply = ""
		a.mu.Unlock()
		return err
	}
	return nil
}

// Wait waits until every message of the batch is acknowledged or refused,
// at most timeout, and returns how many were stored that were not
// duplicates, and those refused. err is set when ctx ended or the timeout
// passed first; the messages still in flight are then given up, and their
// answers, should they come, ignored.
func (b *Batch) Wait(ctx context.Context, timeout time.Duration) (stored int, failures []Failure, err error) {
	a := b.a
	a.mu.Lock()
	b.waiting = true
	if b.outstanding == 0 {
		defer a.mu.Unlock()
		return b.stored, b.failures, nil
	}
	a.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-b.done:
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = fmt.Errorf("no acknowledgement within %s", timeout)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		// Abandoned: its messages no longer hold the window.
		for id, f := range a.pending {
			if f.batch == b {
				delete(a.pending, id)
				<-a.window
			}
		}
	}
	return b.stored, b.failures, err
}

// listen subscribes to the acknowledgements once; a.mu is held.
func (a *AsyncPublisher) listen() error {
	if a.sub != nil {
		return nil
	}
	// An inbox of its own (under the connection's inbox prefix, which
	// the user's permissions allow), not the request mux's.
	prefix := a.nc.NewInbox() + "."
	sub, err := a.nc.Subscribe(prefix+"*", a.acknowledged)
	if err != nil {
		return fmt.Errorf("subscribe to acknowledgements: %w", err)
	}
	// Unlimited: a slow consumer here would drop acknowledgements, and the
	// window already bounds them.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	a.sub, a.prefix = sub, prefix
	go a.failOnReconnect(a.nc.StatusChanged(nats.RECONNECTING, nats.CLOSED))
	return nil
}

// failOnReconnect fails what is in flight when the connection drops: its
// acknowledgements, if any, went to a subscription the server forgot.
func (a *AsyncPublisher) failOnReconnect(status <-chan nats.Status) {
	for s := range status {
		a.mu.Lock()
		for id, f := range a.pending {
			a.settle(id, f, false, nats.ErrDisconnected)
		}
		a.mu.Unlock()
		if s == nats.CLOSED {
			return
		}
	}
}

// acknowledged handles a stream's answer to one message.
func (a *AsyncPublisher) acknowledged(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[min(len(a.prefix), len(m.Subject)):], 36, 64)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.pending[id]
	if !ok {
		return // failed already (a reconnect, a timeout's abandon)
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		// No responders: the stream is between leaders. jetstream sends
		// it again, twice, 250ms apart; so do we.
		if f.retries < noResponderRetries {
			f.retries++
			a.pending[id] = f
			time.AfterFunc(noResponderWait, func() { a.resend(id) })
			return
		}
		a.settle(id, f, false, jetstream.ErrNoStreamResponse)
		return
	}
	duplicate, err := parseAck(m.Data)
	a.settle(id, f, duplicate, err)
}

// resend publishes a message again under its reply subject.
func (a *AsyncPublisher) resend(id uint64) {
	a.mu.Lock()
	f, ok := a.pending[id]
	a.mu.Unlock()
	if !ok {
		return
	}
	if err := a.nc.PublishMsg(f.msg); err != nil {
		a.mu.Lock()
		if f, ok := a.pending[id]; ok {
			a.settle(id, f, false, err)
		}
		a.mu.Unlock()
	}
}

// settle records a message's outcome in its batch; a.mu is held.
func (a *AsyncPublisher) settle(id uint64, f inFlight, duplicate bool, err error) {
	delete(a.pending, id)
	<-a.window
	b := f.batch
	switch {
	case err != nil:
		b.failures = append(b.failures, Failure{Index: f.index, Err: err})
	case !duplicate:
		b.stored++
	}
	if b.outstanding--; b.outstanding == 0 && b.waiting {
		close(b.done)
	}
}

// ackPrefix starts every acknowledgement the server writes (it writes them
// by hand, stream first); an error answer starts with "error".
var ackPrefix = []byte(`{"stream":"`)

// parseAck reads a stream's acknowledgement: whether the message was a
// duplicate, or why it was refused (a *jetstream.APIError, as jetstream
// reports it). The server's own form is read by hand; anything else by
// encoding/json.
func parseAck(data []byte) (duplicate bool, err error) {
	if bytes.HasPrefix(data, ackPrefix) && len(data) > len(ackPrefix) && data[len(ackPrefix)] != '"' &&
		!bytes.Contains(data, []byte(`"error"`)) {
		i := bytes.Index(data, []byte(`"duplicate"`))
		if i < 0 {
			return false, nil
		}
		rest := bytes.TrimLeft(data[i+len(`"duplicate"`):], " ")
		if len(rest) > 0 && rest[0] == ':' {
			return bytes.HasPrefix(bytes.TrimLeft(rest[1:], " "), []byte("true")), nil
		}
	}
	var ack struct {
		Error     *jetstream.APIError `json:"error"`
		Stream    string              `json:"stream"`
		Duplicate bool                `json:"duplicate"`
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		return false, jetstream.ErrInvalidJSAck
	}
	if ack.Error != nil {
		return false, ack.Error
	}
	if ack.Stream == "" {
		return false, jetstream.ErrInvalidJSAck
	}
	return ack.Duplicate, nil
}

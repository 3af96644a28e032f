package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/jscall"
)

// leaderKV is a bucket opened by EnsureKV. On a replicated bucket its Get
// is answered by the bucket's stream leader: jetstream reads a bucket with
// direct gets, which any replica answers, and a replica still applying what
// the leader committed (its server just came back, or the leader just
// changed) answers with a value older than the last one written. A service
// that decides from such a value what to publish (a poller's product
// states, the order and invoice records) would publish a change again.
// Direct gets stay on in the bucket's configuration: processes that bound
// it earlier keep sending them (see docs/operations.md).
type leaderKV struct {
	jetstream.KeyValue
	// replicated: a single replica is its own leader, and its direct get
	// is the cheaper call.
	replicated bool
	nc         *nats.Conn
	// get is the stream's message-get API subject: only its leader
	// answers it.
	get string
	// prefix is the subject of the bucket's keys, before the key.
	prefix string
}

func newLeaderKV(js jetstream.JetStream, kv jetstream.KeyValue, replicas int) *leaderKV {
	return &leaderKV{
		KeyValue: kv, replicated: replicas > 1, nc: js.Conn(),
		get:    apiPrefix(js.Options()) + "STREAM.MSG.GET.KV_" + kv.Bucket(),
		prefix: KeySubject(kv.Bucket(), ""),
	}
}

// apiPrefix is the JetStream API prefix js sends its requests under.
func apiPrefix(o jetstream.JetStreamOptions) string {
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return jetstream.DefaultAPIPrefix
}

// Get reads key's last value as jetstream's Get does (ErrKeyNotFound for a
// key that has none or was deleted), from the stream's leader when the
// bucket is replicated.
func (kv *leaderKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if !kv.replicated {
		return kv.KeyValue.Get(ctx, key)
	}
	m, err := kv.last(ctx, kv.prefix+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, jetstream.ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read %s from its leader: %w", key, err)
	}
	e := &leaderEntry{bucket: kv.Bucket(), key: key, value: m.Data, revision: m.Sequence, created: m.Time,
		op: operation(m.Header)}
	if e.op != jetstream.KeyValuePut {
		return nil, jetstream.ErrKeyNotFound
	}
	return e, nil
}

// DirectReads returns kv (from EnsureKV) reading with jetstream's direct
// gets, which any replica answers: for a hot look-up whose value decides
// nothing that could be published twice, where a read from the leader (2-5
// times a direct get's latency on a three-node cluster) is not worth it.
func DirectReads(kv jetstream.KeyValue) jetstream.KeyValue {
	if lk, ok := kv.(*leaderKV); ok {
		return lk.KeyValue
	}
	return kv
}

// LastRevision returns the revision of the last value (or deletion) written
// under any key that keys matches (a key or a pattern with * and >), 0 when
// there is none, as the stream's leader knows it. A reader of several keys
// through a watch (an ordered consumer, which may live on a replica that
// is behind) has seen all of them once it has seen this revision. ok is
// false for a bucket that was not opened by EnsureKV.
func LastRevision(ctx context.Context, kv jetstream.KeyValue, keys string) (rev uint64, ok bool, err error) {
	lk, ok := kv.(*leaderKV)
	if !ok {
		return 0, false, nil
	}
	m, err := lk.last(ctx, lk.prefix+keys)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, true, nil
	}
	if err != nil {
		return 0, true, fmt.Errorf("read the last revision of %s: %w", keys, err)
	}
	return m.Sequence, true, nil
}

// last asks the stream's leader for the last message on subject, within
// jscall.Timeout: during an election nobody answers.
func (kv *leaderKV) last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, jscall.Timeout)
	defer cancel()
	req, err := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{subject})
	if err != nil {
		return nil, err
	}
	reply, err := kv.nc.RequestWithContext(ctx, kv.get, req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject  string    `json:"subject"`
			Sequence uint64    `json:"seq"`
			Header   []byte    `json:"hdrs"`
			Data     []byte    `json:"data"`
			Time     time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("unreadable answer: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, jetstream.ErrMsgNotFound
	case resp.Error != nil:
		return nil, resp.Error
	case resp.Message == nil:
		return nil, jetstream.ErrInvalidJetStreamResponse
	}
	m := &jetstream.RawStreamMsg{Subject: resp.Message.Subject, Sequence: resp.Message.Sequence,
		Data: resp.Message.Data, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return nil, fmt.Errorf("unreadable headers: %w", err)
		}
	}
	return m, nil
}

// operation is what a bucket's message is, from its headers: a deletion
// or purge (by a client, or a marker the server left when a key's TTL
// removed it), or a value.
func operation(h nats.Header) jetstream.KeyValueOp {
	switch h.Get("KV-Operation") {
	case "DEL":
		return jetstream.KeyValueDelete
	case "PURGE":
		return jetstream.KeyValuePurge
	}
	switch h.Get(jetstream.MarkerReasonHeader) {
	case "MaxAge", "Purge":
		return jetstream.KeyValuePurge
	case "Remove":
		return jetstream.KeyValueDelete
	}
	return jetstream.KeyValuePut
}

// leaderEntry is a value read from the leader.
type leaderEntry struct {
	bucket, key string
	value       []byte
	revision    uint64
	created     time.Time
	op          jetstream.KeyValueOp
}

func (e *leaderEntry) Bucket() string                  { return e.bucket }
func (e *leaderEntry) Key() string                     { return e.key }
func (e *leaderEntry) Value() []byte                   { return e.value }
func (e *leaderEntry) Revision() uint64                { return e.revision }
func (e *leaderEntry) Created() time.Time              { return e.created }
func (e *leaderEntry) Delta() uint64                   { return 0 }
func (e *leaderEntry) Operation() jetstream.KeyValueOp { return e.op }

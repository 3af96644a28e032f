// Package events is hipersync's one event layer: the subjects events travel
// on, the envelope they travel in, the JetStream streams that keep them, and
// the consumer loop every service runs.
//
// Subjects are store.<tenant>.order.approved|cancelled (published by a store)
// and hiper.<tenant>.<kind> (published by hipersync), optionally under a
// Namespace prefix so tests and several deployments can share one NATS
// server. A Kind maps to exactly one protobuf message type per Source, so any
// event can be decoded from its subject alone.
//
// The envelope is CloudEvents' NATS binding in binary mode: ce-* headers,
// Content-Type for the payload (protobuf or protojson), W3C trace context,
// and Nats-Msg-Id set to the caller's deterministic id so that JetStream's
// duplicate window drops a re-publish.
//
// Consume is the loop: handlers return an error and the loop decides what
// happens to the message — ack, retry with backoff, or dead-letter it with
// the reason on the DEADLETTER stream, from where RetryDeadLetter replays it.
package events

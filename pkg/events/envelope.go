package events

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Headers of the envelope: CloudEvents' NATS binding, binary mode.
const (
	HeaderSpecVersion = "ce-specversion"
	HeaderID          = "ce-id"
	HeaderType        = "ce-type"
	HeaderSource      = "ce-source"
	HeaderTime        = "ce-time"
	HeaderSubject     = "ce-subject"
	HeaderContentType = "Content-Type"
	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = "Nats-Msg-Id"

	specVersion = "1.0"
)

// Content types of the payload.
const (
	ContentTypeProtobuf = "application/protobuf"
	ContentTypeJSON     = "application/json"
	// contentTypeXProtobuf is accepted on input because many clients still
	// send the pre-registration name.
	contentTypeXProtobuf = "application/x-protobuf"
)

// Format is the encoding of published events (EVENTS_FORMAT).
type Format string

const (
	FormatProtobuf Format = "protobuf"
	FormatJSON     Format = "json"
)

// FormatEnv is the environment variable FormatFromEnv reads.
const FormatEnv = "EVENTS_FORMAT"

// ErrInvalidFormat is returned by ParseFormat.
var ErrInvalidFormat = errors.New("invalid events format")

// ParseFormat parses an EVENTS_FORMAT value; empty means protobuf.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "", FormatProtobuf:
		return FormatProtobuf, nil
	case FormatJSON:
		return FormatJSON, nil
	}
	return "", fmt.Errorf("%w %q: want %q or %q", ErrInvalidFormat, s, FormatProtobuf, FormatJSON)
}

// FormatFromEnv reads EVENTS_FORMAT.
func FormatFromEnv() (Format, error) {
	f, err := ParseFormat(os.Getenv(FormatEnv))
	if err != nil {
		return "", fmt.Errorf("%s: %w", FormatEnv, err)
	}
	return f, nil
}

// ContentType is the Content-Type header of payloads in f.
func (f Format) ContentType() string {
	if f == FormatJSON {
		return ContentTypeJSON
	}
	return ContentTypeProtobuf
}

// jsonOut follows CONTRACT.md: protojson with lowerCamelCase names.
var jsonOut = protojson.MarshalOptions{UseProtoNames: false}

// jsonIn ignores unknown fields so a store can send more than we read.
var jsonIn = protojson.UnmarshalOptions{DiscardUnknown: true}

// Marshal encodes msg in f.
func (f Format) Marshal(msg proto.Message) ([]byte, error) {
	if f == FormatJSON {
		return jsonOut.Marshal(msg)
	}
	return proto.Marshal(msg)
}

// ErrMalformed is matched (errors.Is) by every decoding failure: the message
// is bad input and retrying it cannot help.
var ErrMalformed = errors.New("malformed payload")

// MalformedError says why a payload could not be decoded.
type MalformedError struct {
	// ContentType is how the payload was read ("application/json", …), or
	// the offending header value when it was not understood.
	ContentType string
	// Message is the name of the message type expected, when known.
	Message string
	Err     error
}

// jsonValueEcho finds where protojson's errors quote the payload's value
// ("invalid value for string field document: 52998224725"): a store's event
// carries the customer's document, e-mail and address, and this text goes
// into logs and dead letters (LGPD). The field and the position stay.
var jsonValueEcho = regexp.MustCompile(`(invalid value for [^:]*: |invalid value |unexpected token ).*`)

func (e *MalformedError) Error() string {
	var b strings.Builder
	b.WriteString("malformed payload")
	if e.Message != "" {
		b.WriteString(" for ")
		b.WriteString(e.Message)
	}
	if e.ContentType != "" {
		b.WriteString(" (")
		b.WriteString(e.ContentType)
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(jsonValueEcho.ReplaceAllString(e.Err.Error(), "${1}(value withheld)"))
	}
	return b.String()
}

func (e *MalformedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrMalformed) true for every MalformedError.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

// Decode decodes an event's payload into into, by its Content-Type:
// application/protobuf (or application/x-protobuf) with proto.Unmarshal,
// application/json (parameters such as charset=utf-8 allowed) with protojson,
// ignoring unknown fields. Without a Content-Type the payload is sniffed: a
// first non-space byte '{' means JSON, anything else protobuf, so a plain
// `nats pub` of JSON works. Every failure is a *MalformedError.
func Decode(headers nats.Header, data []byte, into proto.Message) error {
	if into == nil {
		return &MalformedError{Err: errors.New("nothing to decode into")}
	}
	name := string(into.ProtoReflect().Descriptor().FullName())
	ct, err := contentType(headers, data)
	if err != nil {
		return &MalformedError{ContentType: headerGet(headers, HeaderContentType), Message: name, Err: err}
	}
	switch ct {
	case ContentTypeJSON:
		err = jsonIn.Unmarshal(data, into)
	default:
		err = proto.Unmarshal(data, into)
	}
	if err == nil {
		err = checkTimestamps(into.ProtoReflect())
	}
	if err != nil {
		return &MalformedError{ContentType: ct, Message: name, Err: err}
	}
	return nil
}

// checkTimestamps rejects a Timestamp outside year 1 to 9999, which the
// protobuf wire format lets through but protojson (and so EVENTS_FORMAT=json
// and `events tail`) cannot represent: both formats accept the same events.
// The field's path is spelled out only for a bad one: every event decoded
// is checked.
func checkTimestamps(m protoreflect.Message) error {
	bad := badTimestamp(m)
	if bad == nil {
		return nil
	}
	slices.Reverse(bad.path)
	return fmt.Errorf("field %s: %w", strings.Join(bad.path, "."), bad.err)
}

// badTS is a Timestamp out of range: its error, and the path to it,
// innermost field first.
type badTS struct {
	path []string
	err  error
}

func badTimestamp(m protoreflect.Message) *badTS {
	if m.Descriptor().FullName() == timestampName {
		if ts, ok := m.Interface().(*timestamppb.Timestamp); ok {
			if err := ts.CheckValid(); err != nil {
				return &badTS{err: err}
			}
		}
		return nil
	}
	for _, fd := range timestampFields(m.Descriptor()) {
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		switch {
		case fd.IsMap():
			var bad *badTS
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if bad = badTimestamp(mv.Message()); bad != nil {
					bad.path = append(bad.path, fmt.Sprintf("%s[%v]", fd.JSONName(), k.Interface()))
				}
				return bad == nil
			})
			if bad != nil {
				return bad
			}
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				if bad := badTimestamp(v.List().Get(i).Message()); bad != nil {
					bad.path = append(bad.path, fmt.Sprintf("%s[%d]", fd.JSONName(), i))
					return bad
				}
			}
		default:
			if bad := badTimestamp(v.Message()); bad != nil {
				bad.path = append(bad.path, fd.JSONName())
				return bad
			}
		}
	}
	return nil
}

// timestampFieldsOf caches timestampFields by message type.
var timestampFieldsOf sync.Map // protoreflect.FullName -> []protoreflect.FieldDescriptor

// timestampFields are the fields of messages of type md that can hold a
// Timestamp, at any depth: the only ones checkTimestamps looks into (an
// order's customer, addresses, items and payments hold none).
func timestampFields(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	if v, ok := timestampFieldsOf.Load(md.FullName()); ok {
		return v.([]protoreflect.FieldDescriptor)
	}
	var out []protoreflect.FieldDescriptor
	fields := md.Fields()
	for i := range fields.Len() {
		if sub := messageOf(fields.Get(i)); sub != nil && mayHoldTimestamp(sub, map[protoreflect.FullName]bool{}) {
			out = append(out, fields.Get(i))
		}
	}
	timestampFieldsOf.Store(md.FullName(), out)
	return out
}

// messageOf is the message type a field holds (a map's values'), or nil.
func messageOf(fd protoreflect.FieldDescriptor) protoreflect.MessageDescriptor {
	if fd.IsMap() {
		return fd.MapValue().Message()
	}
	return fd.Message()
}

// mayHoldTimestamp reports whether a message of type md is, or can hold at
// any depth, a Timestamp; seen guards against recursive types.
func mayHoldTimestamp(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) bool {
	if md.FullName() == timestampName {
		return true
	}
	if seen[md.FullName()] {
		return false
	}
	seen[md.FullName()] = true
	fields := md.Fields()
	for i := range fields.Len() {
		if sub := messageOf(fields.Get(i)); sub != nil && mayHoldTimestamp(sub, seen) {
			return true
		}
	}
	return false
}

var timestampName = (&timestamppb.Timestamp{}).ProtoReflect().Descriptor().FullName()

// contentType returns ContentTypeJSON or ContentTypeProtobuf for a payload.
func contentType(headers nats.Header, data []byte) (string, error) {
	raw := headerGet(headers, HeaderContentType)
	if strings.TrimSpace(raw) == "" {
		if rest := bytes.TrimLeft(data, " \t\r\n"); len(rest) > 0 && rest[0] == '{' {
			return ContentTypeJSON, nil
		}
		return ContentTypeProtobuf, nil
	}
	mt, params, err := mime.ParseMediaType(raw)
	if err != nil {
		return "", fmt.Errorf("parse Content-Type: %w", err)
	}
	switch mt {
	case ContentTypeProtobuf, contentTypeXProtobuf:
		return ContentTypeProtobuf, nil
	case ContentTypeJSON:
		// protojson reads UTF-8 only; another charset would decode to garbage.
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return "", fmt.Errorf("unsupported charset %q: want utf-8", cs)
		}
		return ContentTypeJSON, nil
	}
	return "", fmt.Errorf("unsupported Content-Type %q: want %s or %s", mt, ContentTypeProtobuf, ContentTypeJSON)
}

// headerGet reads a header by its exact name, then case-insensitively:
// NATS headers are case-sensitive, but a store's client may canonicalise
// ("Traceparent", "Ce-Id").
func headerGet(h nats.Header, key string) string {
	if v, ok := h[key]; ok && len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// HeaderCarrier adapts nats.Header to OpenTelemetry's TextMapCarrier. Unlike
// propagation.HeaderCarrier it keeps keys as given (NATS headers are
// case-sensitive and W3C names are lowercase) and reads them leniently.
type HeaderCarrier nats.Header

func (c HeaderCarrier) Get(key string) string { return headerGet(nats.Header(c), key) }

func (c HeaderCarrier) Set(key, value string) { c[key] = []string{value} }

func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

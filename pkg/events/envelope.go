package events

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"os"
	"strings"

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
		b.WriteString(e.Err.Error())
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
		err = checkTimestamps(into.ProtoReflect(), "")
	}
	if err != nil {
		return &MalformedError{ContentType: ct, Message: name, Err: err}
	}
	return nil
}

// checkTimestamps rejects a Timestamp outside year 1 to 9999, which the
// protobuf wire format lets through but protojson (and so EVENTS_FORMAT=json
// and `events tail`) cannot represent: both formats accept the same events.
func checkTimestamps(m protoreflect.Message, path string) error {
	if m.Descriptor().FullName() == timestampName {
		if ts, ok := m.Interface().(*timestamppb.Timestamp); ok {
			if err := ts.CheckValid(); err != nil {
				return fmt.Errorf("field %s: %w", path, err)
			}
		}
		return nil
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || (fd.IsMap() && fd.MapValue().Message() == nil) {
			return true
		}
		p := string(fd.JSONName())
		if path != "" {
			p = path + "." + p
		}
		switch {
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				err = checkTimestamps(mv.Message(), fmt.Sprintf("%s[%v]", p, k.Interface()))
				return err == nil
			})
		case fd.IsList():
			for i := 0; i < v.List().Len() && err == nil; i++ {
				err = checkTimestamps(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", p, i))
			}
		default:
			err = checkTimestamps(v.Message(), p)
		}
		return err == nil
	})
	return err
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

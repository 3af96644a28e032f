package orders

import (
	"encoding/base64"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSON appends r as json.Marshal encodes it, byte for byte (the
// same fields, order, omissions and escaping), without reflection: every
// order writes its record three times (sending, the answer, the mark), and
// reflection was most of each write's encoding. TestRecordJSON compares the
// two on records with every field set; a field added to Record (or to a
// type it holds) must be added here too, or that test fails.
func (r *Record) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"tenant":`...)
	b = appendString(b, r.Tenant)
	b = append(b, `,"orderId":`...)
	b = appendString(b, r.OrderID)
	b = append(b, `,"state":`...)
	b = appendString(b, string(r.State))
	b = append(b, `,"generation":`...)
	b = strconv.AppendInt(b, int64(r.Generation), 10)
	if r.HiperOrderID != "" {
		b = append(b, `,"hiperOrderId":`...)
		b = appendString(b, r.HiperOrderID)
	}
	if f := r.HiperFailure; f != nil {
		b = append(b, `,"hiperFailure":{"hiperOrderId":`...)
		b = appendString(b, f.HiperOrderID)
		b = append(b, `,"at":`...)
		if b, err = appendTime(b, f.At); err != nil {
			return nil, err
		}
		if f.Message != "" {
			b = append(b, `,"message":`...)
			b = appendString(b, f.Message)
		}
		b = append(b, '}')
	}
	if len(r.Products) > 0 {
		b = append(b, `,"products":[`...)
		for i, p := range r.Products {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p)
		}
		b = append(b, ']')
	}
	if r.Owner != "" {
		b = append(b, `,"owner":`...)
		b = appendString(b, r.Owner)
	}
	if !r.LeaseUntil.IsZero() {
		b = append(b, `,"leaseUntil":`...)
		if b, err = appendTime(b, r.LeaseUntil); err != nil {
			return nil, err
		}
	}
	if r.Attempts != 0 {
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(r.Attempts), 10)
	}
	if len(r.Reasons) > 0 {
		b = append(b, `,"reasons":[`...)
		for i, rr := range r.Reasons {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"code":`...)
			b = appendString(b, rr.Code)
			if rr.Field != "" {
				b = append(b, `,"field":`...)
				b = appendString(b, rr.Field)
			}
			b = append(b, `,"message":`...)
			b = appendString(b, rr.Message)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendOptString(b, `,"reason":`, r.Reason)
	b = appendOptString(b, `,"lastError":`, r.LastError)
	if !r.SentAt.IsZero() {
		b = append(b, `,"sentAt":`...)
		if b, err = appendTime(b, r.SentAt); err != nil {
			return nil, err
		}
	}
	b = appendOptString(b, `,"answer":`, r.Answer)
	if c := r.Cancel; c != nil {
		b = append(b, `,"cancel":{`...)
		if c.Reason != "" {
			b = append(b, `"reason":`...)
			b = appendString(b, c.Reason)
			b = append(b, ',')
		}
		b = append(b, `"requestedAt":`...)
		if b, err = appendTime(b, c.RequestedAt); err != nil {
			return nil, err
		}
		if len(c.Event) > 0 {
			b = append(b, `,"event":`...)
			b = appendBytes(b, c.Event)
		}
		b = appendOptString(b, `,"error":`, c.Error)
		if c.Attempts != 0 {
			b = append(b, `,"attempts":`...)
			b = strconv.AppendInt(b, int64(c.Attempts), 10)
		}
		b = append(b, '}')
	}
	b = appendOptString(b, `,"cancelOrigin":`, r.CancelOrigin)
	if len(r.Approval) > 0 {
		b = append(b, `,"approval":`...)
		b = appendBytes(b, r.Approval)
	}
	b = appendOptString(b, `,"approvalHash":`, r.ApprovalHash)
	if o := r.Outbox; o != nil {
		b = append(b, `,"outbox":{"id":`...)
		b = appendString(b, o.ID)
		b = append(b, `,"kind":`...)
		b = appendString(b, string(o.Kind))
		b = append(b, `,"payload":`...)
		b = appendBytes(b, o.Payload)
		b = append(b, `,"published":`...)
		b = strconv.AppendBool(b, o.Published)
		b = append(b, '}')
	}
	if len(r.History) > 0 {
		b = append(b, `,"history":[`...)
		for i, t := range r.History {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"at":`...)
			if b, err = appendTime(b, t.At); err != nil {
				return nil, err
			}
			b = appendOptString(b, `,"from":`, string(t.From))
			b = append(b, `,"to":`...)
			b = appendString(b, string(t.To))
			b = appendOptString(b, `,"by":`, t.By)
			b = appendOptString(b, `,"note":`, t.Note)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"createdAt":`...)
	if b, err = appendTime(b, r.CreatedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"updatedAt":`...)
	if b, err = appendTime(b, r.UpdatedAt); err != nil {
		return nil, err
	}
	if !r.PersonalDataRemovedAt.IsZero() {
		b = append(b, `,"personalDataRemovedAt":`...)
		if b, err = appendTime(b, r.PersonalDataRemovedAt); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendOptString appends key and s unless s is empty (omitempty).
func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

var errTimeRange = errors.New("Time.MarshalJSON: year outside of range [0,9999]")

// appendTime appends t as time.Time's MarshalJSON does.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, errTimeRange
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendBytes appends p as encoding/json does a []byte: base64, or null.
func appendBytes(b []byte, p []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// plainASCII marks the ASCII bytes encoding/json writes as they are.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s quoted as encoding/json does: HTML characters,
// control characters, U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

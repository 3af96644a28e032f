package catalogsync

import (
	"encoding/json"
	"strconv"
)

// A product's state is stored as JSON (productState's tags). The initial
// sync encodes a state per product and reads most of them back (a
// variation's stub, written when its parent came): encoding/json's
// reflection was about a sixth of the poller's own work there, so the canonical
// form json.Marshal writes is written and read here by hand, and anything
// else (another version's writing) is read by encoding/json.

// appendJSON appends what json.Marshal makes of s, byte for byte, without
// its reflection: the initial sync encodes a state per product, and
// json.Marshal was a tenth of the poller's own work in it.
func (s productState) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = jsonBool(b, "p", s.Published)
	b = jsonBool(b, "st", s.Stub)
	b = jsonUint(b, "s", s.Skipped)
	b = append(b, `"h":[`...)
	for i, h := range s.Hashes {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, h, 10)
	}
	b = append(b, "],"...)
	b = jsonString(b, "pr", s.Price)
	b = jsonBool(b, "a", s.Active)
	b = jsonString(b, "e", s.Indexed)
	if s.Attrs != nil {
		b = append(b, `"v":{`...)
		b = jsonString(b, "ta", s.Attrs.TypeA)
		b = jsonString(b, "na", s.Attrs.NameA)
		b = jsonString(b, "tb", s.Attrs.TypeB)
		b = jsonString(b, "nb", s.Attrs.NameB)
		b = closeJSON(b, '}')
		b = append(b, ',')
	}
	b = jsonUint(b, "n", s.Changes)
	b = jsonBool(b, "nc", s.NoCategory)
	b = jsonBool(b, "nb", s.NoBrand)
	b = jsonBool(b, "u", s.Unlisted)
	if s.V != 0 {
		b = jsonUint(b, "ver", uint64(s.V))
	}
	return closeJSON(b, '}')
}

// closeJSON ends an object whose every member is followed by a comma.
func closeJSON(b []byte, end byte) []byte {
	if b[len(b)-1] == ',' {
		b = b[:len(b)-1]
	}
	return append(b, end)
}

// jsonBool, jsonUint and jsonString append an omitempty member and a comma.
func jsonBool(b []byte, name string, v bool) []byte {
	if !v {
		return b
	}
	return append(append(append(append(b, '"'), name...), `":true`...), ',')
}

func jsonUint(b []byte, name string, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = append(append(append(b, '"'), name...), `":`...)
	return append(strconv.AppendUint(b, v, 10), ',')
}

func jsonString(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(append(append(b, '"'), name...), `":`...)
	plain := true
	for i := 0; i < len(v) && plain; i++ {
		c := v[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	if plain {
		b = append(append(append(b, '"'), v...), '"')
	} else {
		q, _ := json.Marshal(v) // escapes exactly as json.Marshal does
		b = append(b, q...)
	}
	return append(b, ',')
}

// decode reads a stored state: the canonical form quickly, anything else
// with encoding/json.
func (s *productState) decode(b []byte) error {
	if s.parse(b) {
		return nil
	}
	*s = productState{}
	return json.Unmarshal(b, s)
}

// parse reads the canonical form appendJSON writes, and reports false at
// the first thing it does not expect (whitespace, an escape, a key it does
// not know, a value of another type).
func (s *productState) parse(b []byte) bool {
	d := stateDecoder{b: b}
	ok := d.object(func(key string) bool {
		switch key {
		case "p":
			return d.bool(&s.Published)
		case "st":
			return d.bool(&s.Stub)
		case "s":
			return d.uint(&s.Skipped)
		case "h":
			return d.hashes(&s.Hashes)
		case "pr":
			return d.string(&s.Price)
		case "a":
			return d.bool(&s.Active)
		case "e":
			return d.string(&s.Indexed)
		case "v":
			a := &attrs{}
			s.Attrs = a
			return d.object(func(key string) bool {
				switch key {
				case "ta":
					return d.string(&a.TypeA)
				case "na":
					return d.string(&a.NameA)
				case "tb":
					return d.string(&a.TypeB)
				case "nb":
					return d.string(&a.NameB)
				}
				return false
			})
		case "n":
			return d.uint(&s.Changes)
		case "nc":
			return d.bool(&s.NoCategory)
		case "nb":
			return d.bool(&s.NoBrand)
		case "u":
			return d.bool(&s.Unlisted)
		case "ver":
			var v uint64
			if !d.uint(&v) || v > 1<<31 {
				return false
			}
			s.V = int(v)
			return true
		}
		return false
	})
	return ok && d.i == len(b)
}

type stateDecoder struct {
	b []byte
	i int
}

func (d *stateDecoder) next(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// object reads {"key":value,...}, member calling for each key to read its
// value.
func (d *stateDecoder) object(member func(key string) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	for {
		var key string
		if !d.string(&key) || !d.next(':') || !member(key) {
			return false
		}
		if d.next('}') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}

// string reads a string with no escape and nothing but printable ASCII
// (what appendJSON writes raw).
func (d *stateDecoder) string(v *string) bool {
	if !d.next('"') {
		return false
	}
	start := d.i
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			*v = string(d.b[start:d.i])
			d.i++
			return true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return false
		}
	}
	return false
}

func (d *stateDecoder) bool(v *bool) bool {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "true" {
		d.i += 4
		*v = true
		return true
	}
	if len(d.b)-d.i >= 5 && string(d.b[d.i:d.i+5]) == "false" {
		d.i += 5
		*v = false
		return true
	}
	return false
}

func (d *stateDecoder) uint(v *uint64) bool {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	n, err := strconv.ParseUint(string(d.b[start:d.i]), 10, 64)
	*v = n
	return err == nil && (d.i-start == 1 || d.b[start] != '0')
}

func (d *stateDecoder) hashes(h *hashes) bool {
	if !d.next('[') {
		return false
	}
	for i := range h {
		if i > 0 && !d.next(',') || !d.uint(&h[i]) {
			return false
		}
	}
	return d.next(']')
}

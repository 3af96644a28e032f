package hiper

import (
	"bytes"
	"encoding/json"
	"strings"
)

// envelope is the errors and message every Hiper answer carries, read
// leniently: an error answer is classified by them, and a failure must not
// hide behind an unexpected shape (a single string, objects in the array).
type envelope struct {
	Errors  []string
	Message string
	// Hiper is set when the object carries Hiper's "errors" or "message":
	// the answer is Hiper's own, not a proxy's.
	Hiper bool
	// ID is the "id" of a created order, when the answer carries one.
	ID string
}

// Bounds on how much of Hiper's text an error keeps: how many error texts,
// and how long each.
const (
	maxHiperTexts   = 20
	maxHiperTextLen = 1000
)

// parseEnvelope reads the envelope of body; false when body is not a JSON
// object.
func parseEnvelope(body []byte) (envelope, bool) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return envelope{}, false
	}
	var env envelope
	if v, ok := raw["errors"]; ok {
		env.Errors = texts(v)
		env.Hiper = true
	}
	if v, ok := raw["message"]; ok {
		env.Message = text(v)
		env.Hiper = true
	}
	if v, ok := raw["id"]; ok {
		env.ID = text(v)
	}
	return env, true
}

// texts reads an errors value: an array of anything, a string or null.
func texts(v json.RawMessage) []string {
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		if s := text(v); s != "" {
			return []string{s}
		}
		return nil
	}
	var out []string
	for _, item := range items {
		if s := text(item); s != "" {
			out = append(out, s)
			if len(out) == maxHiperTexts {
				break
			}
		}
	}
	return out
}

// text reads a string, or any other non-null JSON value as its compact text.
func text(v json.RawMessage) string {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return bound(strings.TrimSpace(s))
	}
	v = bytes.TrimSpace(v)
	if bytes.Equal(v, []byte("null")) {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return ""
	}
	return bound(buf.String())
}

func bound(s string) string {
	if len(s) <= maxHiperTextLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxHiperTextLen], "") + "…"
}

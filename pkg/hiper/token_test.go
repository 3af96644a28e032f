package hiper

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func jwtWith(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims)) + ".c2ln"
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		token string
		want  time.Time
		fails bool
	}{
		{name: "whole seconds", token: jwtWith(`{"sid":"a","exp":1767225600}`), want: time.Unix(1767225600, 0)},
		{name: "fraction", token: jwtWith(`{"exp":1767225600.5}`), want: time.Unix(1767225600, 5e8)},
		{name: "padded payload", token: strings.Replace(jwtWith(`{"exp":1767225600}`), ".c2ln", "==.c2ln", 1), want: time.Unix(1767225600, 0)},
		{name: "no exp", token: jwtWith(`{"sid":"a"}`), fails: true},
		{name: "null exp", token: jwtWith(`{"exp":null}`), fails: true},
		{name: "zero exp", token: jwtWith(`{"exp":0}`), fails: true},
		{name: "negative exp", token: jwtWith(`{"exp":-5}`), fails: true},
		{name: "exp as text", token: jwtWith(`{"exp":"soon"}`), fails: true},
		{name: "absurd exp", token: jwtWith(`{"exp":1e300}`), fails: true},
		{name: "claims not json", token: jwtWith(`exp`), fails: true},
		{name: "claims not base64", token: "a.%%%.c", fails: true},
		{name: "two parts", token: "a.b", fails: true},
		{name: "empty", token: "", fails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tokenExpiry(tt.token)
			if tt.fails {
				if err == nil {
					t.Fatalf("tokenExpiry = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("tokenExpiry: %v", err)
			}
			if !got.Equal(tt.want) {
				t.Fatalf("tokenExpiry = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	t.Parallel()
	valid := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{name: "lower hex", key: valid, ok: true},
		{name: "upper hex", key: strings.ToUpper(valid), ok: true},
		{name: "empty", key: ""},
		{name: "short", key: valid[:63]},
		{name: "long", key: valid + "0"},
		{name: "not hex", key: valid[:63] + "g"},
		{name: "path injection", key: valid[:60] + "/../"},
		{name: "multibyte", key: valid[:62] + "é"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkKey(tt.key)
			if (err == nil) != tt.ok {
				t.Fatalf("checkKey(%q) = %v, want ok %v", tt.key, err, tt.ok)
			}
			if err != nil && tt.key != "" && strings.Contains(err.Error(), tt.key) {
				t.Fatalf("checkKey error repeats the key: %v", err)
			}
		})
	}
}

package hiper

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	date := func(t time.Time) string { return t.UTC().Format(http.TimeFormat) }
	tests := []struct {
		name   string
		value  string
		date   string
		want   time.Duration
		wantOK bool
	}{
		{name: "absent"},
		{name: "seconds", value: "7", want: 7 * time.Second, wantOK: true},
		{name: "zero seconds", value: "0", want: 0, wantOK: true},
		{name: "spaces", value: " 3 ", want: 3 * time.Second, wantOK: true},
		{name: "huge seconds capped", value: "99999999999999999999", want: maxRetryAfter, wantOK: true},
		{name: "large seconds capped", value: "9999999999", want: maxRetryAfter, wantOK: true},
		{name: "negative seconds", value: "-5"},
		{name: "fraction", value: "1.5"},
		{name: "garbage", value: "soon"},
		{name: "date from now", value: date(now.Add(90 * time.Second)), want: 90 * time.Second, wantOK: true},
		{name: "date from the Date header", value: date(now.Add(time.Hour)), date: date(now.Add(59 * time.Minute)), want: time.Minute, wantOK: true},
		{name: "bad Date header falls back to now", value: date(now.Add(time.Minute)), date: "yesterday", want: time.Minute, wantOK: true},
		{name: "past date", value: date(now.Add(-time.Hour)), want: 0, wantOK: true},
		{name: "far date capped", value: date(now.AddDate(5, 0, 0)), want: maxRetryAfter, wantOK: true},
		{name: "RFC 850 date", value: now.Add(30 * time.Second).Format(time.RFC850), want: 30 * time.Second, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseRetryAfter(tt.value, tt.date, now)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("parseRetryAfter(%q, %q) = %v, %v; want %v, %v", tt.value, tt.date, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestErrorClasses(t *testing.T) {
	t.Parallel()
	rejected := &Error{Op: "post sales order", Endpoint: "POST /pedido-de-venda/", Status: 400,
		Errors: []string{"O campo documento é obrigatório"}, Message: "Requisição inválida",
		Kind: &RejectedError{Status: 400, Errors: []string{"O campo documento é obrigatório"}}}
	limited := &Error{Op: "get products", Endpoint: "GET /produtos/pontoDeSincronizacao", Status: 429,
		Kind: &RateLimitedError{RetryAfter: 2 * time.Second}, retryAfter: 2 * time.Second, hasRetryAfter: true}
	transient := &Error{Op: "get stock", Endpoint: "GET /estoques/pontoDeSincronizacao", Status: 503, Kind: ErrTransient}
	timeout := &Error{Op: "get stock", Endpoint: "GET /estoques/pontoDeSincronizacao", Kind: ErrTransient,
		Err: fmt.Errorf("no answer within 1s: %w", context.DeadlineExceeded)}
	unknown := &Error{Op: "post sales order", Endpoint: "POST /pedido-de-venda/", Status: 500, Kind: ErrTransient, outcomeUnknown: true}
	canceled := &Error{Op: "get stock", Endpoint: "GET /estoques/pontoDeSincronizacao", Err: context.Canceled}

	tests := []struct {
		name      string
		err       error
		is        []error
		isNot     []error
		transient bool
		retry     time.Duration
		retryOK   bool
		text      []string
	}{
		{name: "rejected", err: fmt.Errorf("forward order: %w", rejected), is: []error{ErrRejected},
			isNot: []error{ErrTransient, ErrRateLimited, ErrOutcomeUnknown},
			text:  []string{"post sales order", "POST /pedido-de-venda/", "400", "O campo documento é obrigatório", "Requisição inválida"}},
		{name: "rate limited", err: limited, is: []error{ErrRateLimited}, isNot: []error{ErrTransient, ErrRejected},
			transient: true, retry: 2 * time.Second, retryOK: true, text: []string{"429", "retry after 2s"}},
		{name: "transient", err: transient, is: []error{ErrTransient}, isNot: []error{ErrRateLimited}, transient: true,
			text: []string{"get stock", "503", "transient"}},
		{name: "timeout", err: timeout, is: []error{ErrTransient, context.DeadlineExceeded}, transient: true,
			text: []string{"no answer within 1s"}},
		{name: "outcome unknown", err: unknown, is: []error{ErrTransient, ErrOutcomeUnknown}, transient: true,
			text: []string{"may have taken effect"}},
		{name: "caller gave up", err: canceled, is: []error{context.Canceled}, isNot: []error{ErrTransient, ErrRejected}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, target := range tt.is {
				if !errors.Is(tt.err, target) {
					t.Errorf("errors.Is(%v, %v) = false", tt.err, target)
				}
			}
			for _, target := range tt.isNot {
				if errors.Is(tt.err, target) {
					t.Errorf("errors.Is(%v, %v) = true", tt.err, target)
				}
			}
			if got := IsTransient(tt.err); got != tt.transient {
				t.Errorf("IsTransient = %v, want %v", got, tt.transient)
			}
			if got, ok := RetryAfter(tt.err); got != tt.retry || ok != tt.retryOK {
				t.Errorf("RetryAfter = %v, %v; want %v, %v", got, ok, tt.retry, tt.retryOK)
			}
			for _, s := range tt.text {
				if !strings.Contains(tt.err.Error(), s) {
					t.Errorf("error %q does not mention %q", tt.err, s)
				}
			}
		})
	}
}

package hiper

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The fuzz targets decode what Hiper (or anything posing as it) may send.
// None may panic; where a value decodes, encoding it must give it back.

func FuzzDecimal(f *testing.F) {
	for _, s := range []string{`0.000000`, `49.90`, `"99"`, `" 12.5 "`, `""`, `null`, `-3`, `1e3`, `1E-05`,
		`9999999999999.999`, `"abc"`, `1e2147483647`, `-0`, `0x10`, `"1"2`, `.5`, `+1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d Decimal
		if err := d.UnmarshalJSON(in); err != nil {
			return
		}
		out, err := d.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal %q: %v", in, err)
		}
		if !json.Valid(out) {
			t.Fatalf("%q encodes as invalid JSON %q", in, out)
		}
		var back Decimal
		if err := back.UnmarshalJSON(out); err != nil || !back.Equal(d.Decimal) {
			t.Fatalf("%q → %q → %v, %v", in, out, back, err)
		}
	})
}

func FuzzBool(f *testing.F) {
	for _, s := range []string{`true`, `false`, `"true"`, `"False"`, `null`, `1`, `"0"`, `""`, `"yes"`, `"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var v Bool
		if err := v.UnmarshalJSON(in); err != nil {
			return
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal %q: %v", in, err)
		}
		var back Bool
		if err := json.Unmarshal(out, &back); err != nil || back != v {
			t.Fatalf("%q → %s → %v, %v", in, out, back, err)
		}
	})
}

func FuzzDigits(f *testing.F) {
	for _, s := range []string{`"01310100"`, `3550308`, `null`, `""`, `-1`, `1.5`, `"12a"`, `18446744073709551616`, `"\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var v Digits
		if err := v.UnmarshalJSON(in); err != nil {
			return
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal %q: %v", in, err)
		}
		var back Digits
		if err := json.Unmarshal(out, &back); err != nil || back != v {
			t.Fatalf("%q → %s → %q, %v", in, out, back, err)
		}
	})
}

func FuzzTime(f *testing.F) {
	for _, s := range []string{`"01/03/2026 14:05:09"`, `"01/03/2026"`, `""`, `null`, `"15/10/2017 00:30:00"`,
		`"18/02/2018 23:30:00"`, `"31/02/2026 10:00:00"`, `"2026-03-01T14:05:09Z"`, `12`, `"99/99/9999 99:99:99"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var v Time
		if err := v.UnmarshalJSON(in); err != nil {
			return
		}
		out, err := v.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal %q: %v", in, err)
		}
		var back Time
		if err := back.UnmarshalJSON(out); err != nil || !back.Equal(v.Time) {
			t.Fatalf("%q → %s → %v, %v", in, out, back, err)
		}
	})
}

// fuzzAnswer checks what the client makes of any status and body on one
// endpoint: never a panic, never a success together with an error, and
// always one class per error.
func fuzzAnswer(t *testing.T, ep *endpoint, status int, body []byte, out any) {
	c := &Client{maxBody: DefaultMaxBodyBytes, now: time.Now}
	req := request{ep: ep, token: "tok"}
	ans := &answer{status: status, header: http.Header{}, body: body}
	err := c.classify(req, ans)
	if err == nil {
		if status < 200 || status > 299 {
			t.Fatalf("status %d classified as a success", status)
		}
		_ = json.Unmarshal(body, out)
		return
	}
	var e *Error
	if !errors.As(err, &e) || e.Kind == nil {
		t.Fatalf("%v: not a classified *Error", err)
	}
	_ = err.Error()
}

func FuzzProductPage(f *testing.F) {
	f.Add(200, []byte(`{"pontoDeSincronizacao":201,"produtos":[{"id":"a","codigo":1,"preco":49.90,"ativo":"true","grade":true,`+
		`"produtoPrimarioId":"00000000-0000-0000-0000-000000000000","variacao":[{"id":"b","quantidadeEmEstoque":"2"}],`+
		`"imagensAdicionais":[{"imagem":"x"}],"precoAtacado":null}],"errors":[],"message":null}`))
	f.Add(400, []byte(`{"pontoDeSincronizacao":0,"produtos":null,"errors":["Nenhum produto encontrado"],"message":null}`))
	f.Add(200, []byte(`{"pontoDeSincronizacao":0,"produtos":[]}`))
	f.Add(401, []byte(`{"errors":"Token expirado","message":{"a":1}}`))
	f.Add(500, []byte(`<html>`))
	f.Add(200, []byte(`{"produtos":[{"peso":1e2147483647}]}`))
	f.Add(200, []byte(`{"pontoDeSincronizacao":7,"produtos":[{"id":"a"}],"errors":[""]}`))
	f.Add(200, []byte(`{"pontoDeSincronizacao":7,"produtos":[{"id":"a"}],"errors":"Nenhum produto encontrado"}`))
	f.Add(200, []byte(`{"pontoDeSincronizacao":7,"produtos":[{"id":"a"}],"ERRORS":["x"]}`))
	f.Add(200, []byte(`{"pontoDeSincronizacao":0,"pontoDeSincronizacao":7,"produtos":[]}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		var page ProductPage
		fuzzAnswer(t, epProducts, status, body, &page)
		// The one-pass decode of a plain answer is what the whole way
		// (envelope, classification, decode) makes of it.
		c := &Client{maxBody: DefaultMaxBodyBytes, now: time.Now}
		req := request{ep: epProducts, token: "tok"}
		var quick, full, one ProductPage
		fast := status >= 200 && status < 300 && json.Unmarshal(body, &quick) == nil && plainProducts(&quick)
		err := c.decode(req, &answer{status: status, header: http.Header{}, body: body}, &one)
		if fast {
			if cerr := c.classify(req, &answer{status: status, header: http.Header{}, body: body}); cerr != nil {
				t.Fatalf("plain answer %q classified as %v", body, cerr)
			}
			if derr := json.Unmarshal(body, &full); derr != nil || err != nil || !reflect.DeepEqual(full, one) {
				t.Fatalf("plain answer %q: decode %v, one pass %v; %+v vs %+v", body, derr, err, full, one)
			}
		}
	})
}

func FuzzOrderStatus(f *testing.F) {
	f.Add(200, []byte(`{"cancelado":false,"codigoDaSituacaoDeProcessamento":2,"codigoDoPedidoDeVenda":"LV00000000002",`+
		`"data":"01/03/2026 14:05:09","eventos":[{"codigoDoTipoDeEvento":3,"data":"01/03/2026","observacao":"NF 123",`+
		`"chaveDocumentoFiscal":"3526","tipoDocumentoFiscal":"NFe","urlArquivoXml":"http://x"}],"pedidoDeVendaId":"a","errors":[],"message":null}`))
	f.Add(200, []byte(`{"eventos":null,"data":null}`))
	f.Add(404, []byte(`{"errors":["Pedido não encontrado"]}`))
	f.Add(200, []byte(`{"errors":["x"],"cancelado":"true"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		var st OrderStatus
		fuzzAnswer(t, epOrderStatus, status, body, &st)
	})
}

func FuzzTokenAnswer(f *testing.F) {
	f.Add(200, []byte(`{"chaveDeSeguranca":"k","token":"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE5MDAwMDAwMDB9.c2ln","errors":[],"message":null}`))
	f.Add(400, []byte(`{"chaveDeSeguranca":"k","token":null,"errors":["Chave inválida"]}`))
	f.Add(200, []byte(`{"token":"a.b.c"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		var out TokenAnswer
		fuzzAnswer(t, epToken, status, body, &out)
		_, _ = tokenExpiry(out.Token)
	})
}

func FuzzTokenExpiry(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE5MDAwMDAwMDB9.c2ln")
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, jwt string) {
		exp, err := tokenExpiry(jwt)
		if err == nil && exp.IsZero() {
			t.Fatalf("%q: zero expiry without an error", jwt)
		}
	})
}

func FuzzRetryAfter(f *testing.F) {
	f.Add("120", "")
	f.Add("Sun, 01 Mar 2026 12:00:30 GMT", "Sun, 01 Mar 2026 12:00:00 GMT")
	f.Add("-1", "x")
	f.Fuzz(func(t *testing.T, value, date string) {
		d, ok := parseRetryAfter(value, date, time.Now())
		if d < 0 || d > maxRetryAfter || (!ok && d != 0) || (ok && strings.TrimSpace(value) == "") {
			t.Fatalf("parseRetryAfter(%q, %q) = %v, %v", value, date, d, ok)
		}
	})
}

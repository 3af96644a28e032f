package notes

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// Valid keys: an NF-e of SP (model 55, series 1, number 123) and an NFC-e
// of RS (model 65, series 2, number 4567).
const (
	keyNFe  = "35250512345678000190550010000001231000000124"
	keyNFCe = "43241111222333000144650020000045672000003450"
)

func TestParseAccessKey(t *testing.T) {
	t.Parallel()
	ok := []struct {
		in                    string
		model, series, number string
		state, year, month    int
	}{
		{keyNFe, "55", "1", "123", 35, 25, 5},
		{keyNFCe, "65", "2", "4567", 43, 24, 11},
		{"3525 0512 3456 7800 0190 5500 1000 0001 2310 0000 0124", "55", "1", "123", 35, 25, 5},
		{"NFe" + keyNFe, "55", "1", "123", 35, 25, 5},
		// NT 2025.001: the issuer's alphanumeric CNPJ inside the key.
		{"35260512ABC34501DE35550010000001231000000125", "55", "1", "123", 35, 26, 5},
		{"3526 0512 abc3 4501 de35 5500 1000 0001 2310 0000 0125", "55", "1", "123", 35, 26, 5},
		{" 3525.0512.3456-7800 0190 5500 1000 0001 2310 0000 0124\n", "55", "1", "123", 35, 25, 5},
	}
	for _, c := range ok {
		k, err := ParseAccessKey(c.in)
		if err != nil {
			t.Errorf("ParseAccessKey(%q): %v", c.in, err)
			continue
		}
		if k.Model != c.model || k.Series != c.series || k.Number != c.number || k.State != c.state ||
			k.Year != c.year || k.Month != c.month || len(k.Digits) != AccessKeyLen {
			t.Errorf("ParseAccessKey(%q) = %+v", c.in, k)
		}
	}
	bad := []struct {
		in   string
		kind error
		code string
	}{
		{"", ErrKeyMissing, "missing"},
		{"   ", ErrKeyMissing, "missing"},
		{keyNFe[:43], ErrKeyLength, "length"},
		{keyNFe + "1", ErrKeyLength, "length"},
		{keyNFe[:43] + "5", ErrKeyCheckDigit, "check_digit"},
		{keyNFe[:10] + "9" + keyNFe[11:], ErrKeyCheckDigit, "check_digit"},
		{keyNFe[:20] + "x" + keyNFe[21:], ErrKeyCharacters, "characters"},
		{"chave " + keyNFe, ErrKeyCharacters, "characters"},
		{"35260512ABC34501DE35550010000001231000000126", ErrKeyCheckDigit, "check_digit"},
		{"35260512ABC34501DEA5550010000001231000000125", ErrKeyCharacters, "characters"}, // a letter in the CNPJ's check digits
		{"3526A512ABC34501DE35550010000001231000000125", ErrKeyCharacters, "characters"}, // a letter before the CNPJ
	}
	for _, c := range bad {
		_, err := ParseAccessKey(c.in)
		var ke *AccessKeyError
		if !errors.Is(err, c.kind) || !errors.As(err, &ke) || ke.Code() != c.code {
			t.Errorf("ParseAccessKey(%q) = %v, want %v (%s)", c.in, err, c.kind, c.code)
		}
	}
}

func TestCheckDigitRemainders(t *testing.T) {
	t.Parallel()
	// A remainder of 0 or 1 gives 0, else 11 minus it: every digit 0-9
	// comes out for some key.
	seen := map[byte]bool{}
	for i := range 43 {
		for d := byte('0'); d <= '9'; d++ {
			b := []byte(keyNFe[:43])
			b[i] = d
			seen[checkDigit(string(b))] = true
		}
	}
	if len(seen) != 10 {
		t.Errorf("check digits seen: %v, want all ten", seen)
	}
}

func TestReadInvoice(t *testing.T) {
	t.Parallel()
	cases := []struct {
		note, number, series string
	}{
		{"NF 1234", "1234", ""},
		{"Nota fiscal nº 000.123", "123", ""},
		{"1234", "1234", ""},
		{"  000123 ", "123", ""},
		{"#1234", "1234", ""},
		{"NF-e 000.001.234 série 001", "1234", "1"},
		{"NFC-e nº 45 emitida", "45", ""},
		{"Nota Fiscal Eletrônica número 98765, série 2", "98765", "2"},
		{"Série 3 NF 77", "77", "3"},
		{"NF série 001 nº 123", "123", "1"},
		{"NF:123", "123", ""},
		{"NF123", "123", ""},
		{"nº.555", "555", ""},
		{"N.º 42", "42", ""},
		{"NOTA FISCAL N° 321", "321", ""},
		{"Nota fiscal emitida: 9001", "9001", ""},
		{"Cupom fiscal 808", "808", ""},
		{"Faturado. NF 1500 - chave " + keyNFe, "1500", ""},
		// Nothing clear: no number rather than a guess.
		{"", "", ""},
		{"Faturado", "", ""},
		{"NF emitida em 12/05/2025", "", ""},
		{"NF emitida às 10:30", "", ""},
		{"Pedido 555 faturado", "", ""},
		{"NF 0000", "", ""},
		{"NF 1234567890", "", ""},
		{"chave " + keyNFe, "", ""},
		{keyNFe, "", ""},
		{"12/05/2025", "", ""},
	}
	for _, c := range cases {
		got := ReadInvoice(c.note)
		if got.Number != c.number || got.Series != c.series {
			t.Errorf("ReadInvoice(%q) = %+v, want number %q series %q", c.note, got, c.number, c.series)
		}
	}
}

func TestReadTrackingCode(t *testing.T) {
	t.Parallel()
	cases := []struct{ note, code string }{
		{"BR123456789BR", "BR123456789BR"},
		{"Código de rastreio: br123456789br", "BR123456789BR"},
		{"Rastreio:OJ987654321BR enviado", "OJ987654321BR"},
		{"Objeto postado. Rastreamento: QB123456789BR.", "QB123456789BR"},
		{"Entregue à transportadora Jadlog, rastreio 10083912345678", "10083912345678"},
		{"Código de rastreamento LGI-12345", "LGI-12345"},
		{"tracking: 1Z999AA10123456784", "1Z999AA10123456784"},
		{"AWB 123-45678901", "123-45678901"},
		{"10083912345678", "10083912345678"},
		{"  TE123456  ", "TE123456"},
		// Nothing clear.
		{"", ""},
		{"Entregue à transportadora", ""},
		{"Rastreio em breve", ""},
		{"Rastreio: 12/05/2025", ""},
		{"Enviado em 12/05/2025 10:30", ""},
		{"Pedido enviado pela transportadora Jadlog", ""},
		{"1234", ""},
	}
	for _, c := range cases {
		if got := ReadTrackingCode(c.note); got != c.code {
			t.Errorf("ReadTrackingCode(%q) = %q, want %q", c.note, got, c.code)
		}
	}
}

func TestLongNotesAreBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("palavra ", 10000) + "NF 123"
	if got := ReadInvoice(long); got.Number != "" {
		t.Errorf("a number past the first %d bytes was read: %+v", maxNote, got)
	}
	if got := ReadInvoice("NF 123 " + long); got.Number != "123" {
		t.Errorf("ReadInvoice of a long note = %+v", got)
	}
}

func FuzzReadInvoice(f *testing.F) {
	for _, s := range []string{"NF 1234", "Nota fiscal nº 000.123", "1234", "NF-e 1 série 2", "nº.5", "12/05/2025", "\xff\xfeNF 1", keyNFe} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, note string) {
		inv := ReadInvoice(note)
		if len(inv.Number) > maxInvoiceDigits || strings.Trim(inv.Number, "0123456789") != "" || strings.HasPrefix(inv.Number, "0") {
			t.Fatalf("ReadInvoice(%q) number %q is not 1-9 digits without leading zeros", note, inv.Number)
		}
		if len(inv.Series) > 3 || strings.Trim(inv.Series, "0123456789") != "" {
			t.Fatalf("ReadInvoice(%q) series %q", note, inv.Series)
		}
	})
}

func FuzzReadTrackingCode(f *testing.F) {
	for _, s := range []string{"BR123456789BR", "Rastreio: 10083912345678", "LGI-12345", "código: ab", "\x00rastreio\x00x1x1x1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, note string) {
		code := ReadTrackingCode(note)
		if code == "" {
			return
		}
		if !utf8.ValidString(code) || len(code) < minTrackingLen || len(code) > maxTrackingLen || !strings.Contains(note, code) && !strings.Contains(strings.ToUpper(note), code) {
			t.Fatalf("ReadTrackingCode(%q) = %q", note, code)
		}
	})
}

func FuzzParseAccessKey(f *testing.F) {
	for _, s := range []string{keyNFe, keyNFCe, "NFe" + keyNFCe, keyNFe[:43], "", "3525 0512", "ＮＦｅ" + keyNFe} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseAccessKey(s)
		if err != nil {
			var ke *AccessKeyError
			if !errors.As(err, &ke) || ke.Code() == "" {
				t.Fatalf("ParseAccessKey(%q): %v is not an *AccessKeyError", s, err)
			}
			return
		}
		if len(k.Digits) != AccessKeyLen || checkDigit(k.Digits[:43]) != k.Digits[43] {
			t.Fatalf("ParseAccessKey(%q) accepted %q", s, k.Digits)
		}
		if again, err := ParseAccessKey(k.Digits); err != nil || again != k {
			t.Fatalf("the digits of a valid key do not parse to the same key: %v %+v", err, again)
		}
	})
}

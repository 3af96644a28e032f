package notes

import "strings"

// Invoice is what a note says about an invoice.
type Invoice struct {
	// Number is the invoice number without separators or leading zeros
	// ("000.123" is "123"); empty when the note does not clearly say one.
	Number string
	// Series is the series (série) when the note names one.
	Series string
}

// maxInvoiceDigits is the longest invoice number: nNF has 9 digits.
const maxInvoiceDigits = 9

// lookahead is how many tokens after a keyword may hold what it announces:
// "Nota fiscal eletrônica nº 000.123" has three between "Nota" and the
// number.
const lookahead = 4

// invoiceWords announce an invoice number, folded: "NF", "NF-e", "NFC-e",
// "Nota fiscal", "Número", "nº", "Cupom"…
var invoiceWords = map[string]bool{
	"nf": true, "nfe": true, "nf-e": true, "nfc": true, "nfce": true, "nfc-e": true,
	"nota": true, "danfe": true, "cupom": true, "numero": true, "num": true,
	"no": true, "n.o": true, "n": true, "nr": true, "nro": true,
}

// seriesWords announce a series, folded.
var seriesWords = map[string]bool{"serie": true, "ser": true}

// ReadInvoice reads the invoice number and series from a note: the first
// number of up to nine digits that follows a word announcing it ("NF 1234",
// "Nota fiscal nº 000.123", "NF-e: 98765 série 1"), or the note itself when
// it is nothing but a number ("1234"). A date, a time or the 44-digit access
// key is never taken for the number, nor is the series.
func ReadInvoice(note string) Invoice {
	toks := split(tokenize(note, isJoiner))
	inv := Invoice{Series: readSeries(toks)}
	for i, t := range toks {
		if !invoiceWords[t.low] {
			continue
		}
		if n, ok := numberAfter(toks, i); ok {
			inv.Number = n
			return inv
		}
	}
	if len(toks) == 1 && toks[0].digits() {
		if n, ok := invoiceNumber(toks[0]); ok {
			inv.Number = n
		}
	}
	return inv
}

// numberAfter finds the number that toks[i] announces. Words in between are
// passed over, and a series with its number; anything else (a date, a
// code) ends the search.
func numberAfter(toks []token, i int) (string, bool) {
	for j := i + 1; j < len(toks) && j <= i+lookahead; j++ {
		t := toks[j]
		switch {
		case seriesWords[t.low]:
			if j+1 < len(toks) && toks[j+1].digits() {
				j++
			}
		case t.digits():
			return invoiceNumber(t)
		case !t.letters():
			return "", false
		}
	}
	return "", false
}

// invoiceNumber reads t as an invoice number: 1 to 9 digits, dots between
// groups allowed, not all zeros.
func invoiceNumber(t token) (string, bool) {
	d := strings.ReplaceAll(t.raw, ".", "")
	if d == "" || len(d) > maxInvoiceDigits {
		return "", false
	}
	n := trimZeros(d)
	if n == "0" {
		return "", false
	}
	return n, true
}

// readSeries returns the number after the first series word, if it has at
// most three digits (série has three in the access key).
func readSeries(toks []token) string {
	for i, t := range toks {
		if seriesWords[t.low] && i+1 < len(toks) && toks[i+1].digits() {
			if d := strings.ReplaceAll(toks[i+1].raw, ".", ""); d != "" && len(d) <= 3 {
				return trimZeros(d)
			}
		}
	}
	return ""
}

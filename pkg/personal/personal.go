// Package personal keeps the customer's personal data (LGPD) out of what
// people read: logs, reasons, events' messages, dead letters, screens. One
// place decides how a text loses it (Redact) and how a CPF/CNPJ is shown
// (MaskDocument).
package personal

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Redacted stands for personal data removed from a text.
const Redacted = "***"

// minKnown is the shortest value Redact looks for: shorter ones
// (an address number, "01") would hide ordinary words and figures.
const minKnown = 3

var (
	emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+`)
	// A CPF or CNPJ written with its punctuation (the alphanumeric CNPJ
	// too): never a product code, an EAN or an amount.
	documentPattern = regexp.MustCompile(`\b\d{3}\.\d{3}\.\d{3}-\d{2}\b|\b[0-9A-Za-z]{2}\.[0-9A-Za-z]{3}\.[0-9A-Za-z]{3}/[0-9A-Za-z]{4}-\d{2}\b`)
)

// Redact hides the personal data a text from Hiper, or from a proxy in
// front of it, may echo: the values known (the customer's
// document, name, e-mail, street of the call), written in any case, and any
// e-mail address or punctuated CPF/CNPJ. What reaches an error, a log line,
// an event's message or a dead letter from Hiper's answers goes through it,
// so none of them names a customer.
func Redact(s string, known ...string) string {
	folded := foldCase(s)
	for _, v := range known {
		v = strings.TrimSpace(v)
		// Compiling a value's pattern costs more than the rest: only for
		// a value s may hold, whatever its case.
		if !strings.Contains(folded, foldCase(v)) {
			continue
		}
		if out := redactWord(s, v); out != s {
			s, folded = out, foldCase(out)
		}
	}
	s = emailPattern.ReplaceAllLiteralString(s, Redacted)
	return documentPattern.ReplaceAllLiteralString(s, Redacted)
}

// redactWord replaces v in s, whatever its case, where it stands as a word
// of its own: a name "Ana" is hidden in "cliente Ana Souza", not in
// "análise".
func redactWord(s, v string) string {
	if utf8.RuneCountInString(v) < minKnown {
		return s
	}
	re, err := regexp.Compile("(?i)" + regexp.QuoteMeta(v))
	if err != nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range re.FindAllStringIndex(s, -1) {
		before, _ := utf8.DecodeLastRuneInString(s[:m[0]])
		after, _ := utf8.DecodeRuneInString(s[m[1]:])
		if wordRune(before) || wordRune(after) {
			continue
		}
		b.WriteString(s[last:m[0]])
		b.WriteString(Redacted)
		last = m[1]
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// foldCase maps each rune of s to the least of those equal to it under
// simple case folding, as a case-insensitive pattern matches them: where
// "(?i)v" matches in s, foldCase(v) is in foldCase(s).
func foldCase(s string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, s)
}

func wordRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// MaskDocument keeps the last two digits of a CPF/CNPJ (its check digits,
// enough to tell two customers apart on a call) and hides the rest: a full
// document is personal data, shown only when a person asks for it.
func MaskDocument(doc string) string {
	if len(doc) <= 2 {
		return strings.Repeat("*", len(doc))
	}
	return strings.Repeat("*", len(doc)-2) + doc[len(doc)-2:]
}

package notes

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNote bounds how much of a note is read: Hiper's notes are a sentence
// or two, and a reader must stay cheap on whatever arrives.
const maxNote = 4 << 10

// token is a run of letters and digits, with joiners kept where they sit
// between two of them ("000.123", "NF-e", "12/05/2025").
type token struct {
	raw string // as written
	low string // folded: lower case, accents removed, º and ° as o
}

func (t token) letters() bool { return strings.IndexFunc(t.raw, isDigit) < 0 }

func (t token) digits() bool {
	return strings.IndexFunc(t.raw, func(r rune) bool { return !isDigit(r) && r != '.' }) < 0
}

// tokenize splits s into tokens; everything that is not a letter, a digit
// or a joiner between two of them separates tokens.
func tokenize(s string, joiner func(rune) bool) []token {
	if len(s) > maxNote {
		s = s[:maxNote]
	}
	s = strings.ToValidUTF8(s, " ")
	var toks []token
	start := -1
	flush := func(end int) {
		if start >= 0 {
			raw := s[start:end]
			toks = append(toks, token{raw: raw, low: fold(raw)})
			start = -1
		}
	}
	for i, r := range s {
		switch {
		case isWordRune(r):
			if start < 0 {
				start = i
			}
		case joiner(r) && start >= 0 && i+1 < len(s):
			next, _ := utf8.DecodeRuneInString(s[i+1:])
			if !isWordRune(next) {
				flush(i)
			}
		default:
			flush(i)
		}
	}
	flush(len(s))
	return toks
}

// split breaks tokens that mix letters and digits at each change between
// the two ("NF123" is "NF" and "123"; "nº.123" is "nº" and "123"), for
// readers that look for words followed by numbers.
func split(toks []token) []token {
	var out []token
	for _, t := range toks {
		if t.letters() || t.digits() {
			out = append(out, t)
			continue
		}
		start, kind := 0, -1
		for i, r := range t.raw {
			k := runeKind(r)
			if k == kind || k == kindJoiner {
				continue
			}
			if kind >= 0 {
				out = appendPart(out, t.raw[start:i])
			}
			start, kind = i, k
		}
		out = appendPart(out, t.raw[start:])
	}
	return out
}

const (
	kindLetter = iota
	kindDigit
	kindJoiner
)

func runeKind(r rune) int {
	switch {
	case isDigit(r):
		return kindDigit
	case isJoiner(r):
		return kindJoiner
	}
	return kindLetter
}

// appendPart appends part without the joiners it may start or end with.
func appendPart(toks []token, part string) []token {
	part = strings.TrimFunc(part, isJoiner)
	if part == "" {
		return toks
	}
	return append(toks, token{raw: part, low: fold(part)})
}

func isDigit(r rune) bool { return '0' <= r && r <= '9' }

// isJoiner reports the joiners of invoice notes: numbers with dots
// ("000.123"), dates and times stay one token each.
func isJoiner(r rune) bool { return r == '.' || r == '-' || r == '/' || r == ':' }

// isDash is the joiner of tracking notes: codes may have dashes
// ("LGI-12345"), while "Rastreio:BR123456789BR" is a word and a code.
func isDash(r rune) bool { return r == '-' }

func isWordRune(r rune) bool {
	return isDigit(r) || unicode.IsLetter(r) || r == 'º' || r == '°' || r == 'ª'
}

// fold lowers s and removes the accents Portuguese uses, so "Número" and
// "numero", "Nº" and "no" compare equal.
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToLower(s) {
		switch r {
		case 'á', 'à', 'â', 'ã', 'ä', 'ª':
			r = 'a'
		case 'é', 'è', 'ê', 'ë':
			r = 'e'
		case 'í', 'ì', 'î', 'ï':
			r = 'i'
		case 'ó', 'ò', 'ô', 'õ', 'ö', 'º', '°':
			r = 'o'
		case 'ú', 'ù', 'û', 'ü':
			r = 'u'
		case 'ç':
			r = 'c'
		}
		b.WriteRune(r)
	}
	return b.String()
}

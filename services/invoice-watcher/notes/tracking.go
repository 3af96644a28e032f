package notes

import "strings"

// Bounds of a tracking code that is not a Correios one: carriers use 8 to
// 30 characters; anything shorter is more likely a word or a number of
// something else.
const (
	minTrackingLen = 5
	maxTrackingLen = 40
)

// trackingWords announce a tracking code, folded.
var trackingWords = map[string]bool{
	"rastreio": true, "rastreamento": true, "rastreavel": true, "tracking": true,
	"objeto": true, "codigo": true, "cod": true, "awb": true, "etiqueta": true,
}

// ReadTrackingCode reads the carrier's tracking code from a note: a Correios
// code anywhere ("BR123456789BR", returned in upper case), else the first
// code after a word announcing it ("Rastreio: 10083912345678", "código de
// rastreamento LGI-12345"), else the note itself when it is nothing but one
// code. A code has 5 to 40 letters, digits and dashes, at least one a digit;
// a date or a time is never taken for one. It returns "" when the note
// does not clearly say a code.
func ReadTrackingCode(note string) string {
	toks := tokenize(note, isDash)
	for _, t := range toks {
		if isCorreios(t.raw) {
			return strings.ToUpper(t.raw)
		}
	}
	for i, t := range toks {
		if !trackingWords[t.low] {
			continue
		}
		for j := i + 1; j < len(toks) && j <= i+lookahead; j++ {
			if isTrackingCode(toks[j].raw) {
				return toks[j].raw
			}
			if !toks[j].letters() {
				break
			}
		}
	}
	if len(toks) == 1 && isTrackingCode(toks[0].raw) {
		return toks[0].raw
	}
	return ""
}

// isCorreios reports whether s is a Correios (UPU S10) code: two letters,
// nine digits, two letters.
func isCorreios(s string) bool {
	if len(s) != 13 {
		return false
	}
	for i := 0; i < 13; i++ {
		c := s[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if (i < 2 || i > 10) != letter || !letter && !('0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// isTrackingCode reports whether s looks like a tracking code: 5 to 40
// letters, digits and dashes, at least one a digit.
func isTrackingCode(s string) bool {
	if len(s) < minTrackingLen || len(s) > maxTrackingLen {
		return false
	}
	digit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			digit = true
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '-':
		default:
			return false
		}
	}
	return digit
}

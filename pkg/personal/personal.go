// Package personal keeps the customer's personal data (LGPD) out of what
// people read: logs, reasons, events' messages, dead letters, screens. One
// place decides how a text loses it (Redact) and how a CPF/CNPJ is shown
// (MaskDocument).
package personal

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Redacted stands for personal data removed from a text.
const Redacted = "***"

// minKnown is the shortest value Redact looks for: shorter ones
// (an address number, "01") would hide ordinary words and figures.
const minKnown = 3

var (
	emailPattern = regexp.MustCompile(`[\p{L}\p{M}\p{N}._%+\-]+@[\p{L}\p{M}\p{N}\-]+(\.[\p{L}\p{M}\p{N}\-]+)+`)
	// A CPF or CNPJ written with its punctuation (the alphanumeric CNPJ
	// too): never a product code, an EAN or an amount.
	documentPattern = regexp.MustCompile(`\b\d{3}\.\d{3}\.\d{3}-\d{2}\b|\b[0-9A-Za-z]{2}\.[0-9A-Za-z]{3}\.[0-9A-Za-z]{3}/[0-9A-Za-z]{4}-\d{2}\b`)

	emails = finder{re: emailPattern, least: 1,
		in: func(r rune) bool {
			switch {
			case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
				return true
			case r < utf8.RuneSelf:
				return r == '.' || r == '_' || r == '%' || r == '+' || r == '-' || r == '@'
			}
			return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
		},
		key: func(r rune) bool { return r == '@' }}
	documents = finder{re: documentPattern, least: 1,
		in: func(r rune) bool {
			return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '/' || r == '-'
		},
		key: func(r rune) bool { return r == '-' }, apart: wordRune}
)

// Redact hides the personal data a text from Hiper, or from a proxy in
// front of it, may echo: the values known (the customer's
// document, name, e-mail, street of the call), written in any case, with or
// without accents, and any e-mail address or punctuated CPF/CNPJ. What
// reaches an error, a log line, an event's message or a dead letter from
// Hiper's answers goes through it, so none of them names a customer.
func Redact(s string, known ...string) string {
	t := &text{s: s}
	t.hideValues(known)
	return t.redacted(false)
}

// A text is a string being redacted and the spans of it found to hide.
// Every rule adds spans of the original string, and the text is rewritten
// once: what one rule hid no other uncovers, and no rule depends on what
// another left.
type text struct {
	s    string
	hide []span
}

type span struct{ from, to int }

// hideValues hides what Redact does: the values known, any e-mail address
// and any punctuated CPF/CNPJ.
func (t *text) hideValues(known []string) {
	for _, v := range known {
		t.hideKnown(v)
	}
	t.find(emails)
	t.find(documents)
}

// hideKnown hides v where it stands as words of its own, whatever its
// case and accents: a name "Ana" is hidden in "cliente ANA Souza", not in
// "análise".
func (t *text) hideKnown(v string) {
	fv := foldString(strings.TrimSpace(v))
	if len(fv) < minKnown {
		return
	}
	for i := 0; i < len(t.s); {
		r, n := utf8.DecodeRuneInString(t.s[i:])
		if foldRune(r) == fv[0] {
			if end := foldedPrefix(t.s[i:], fv); end > 0 && t.alone(i, i+end, wordRune) {
				t.hide = append(t.hide, span{i, i + end})
				i += end
				continue
			}
		}
		i += n
	}
}

// foldedPrefix is the length of the shortest prefix of s that folds to
// fv, with the accents written apart after its last letter; 0 if none
// does.
func foldedPrefix(s string, fv []rune) int {
	k := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		f := foldRune(r)
		switch {
		case f < 0:
		case k == len(fv):
			return i
		case f != fv[k]:
			return 0
		default:
			k++
		}
		i += n
	}
	if k == len(fv) {
		return len(s)
	}
	return 0
}

// A finder is a pattern of personal data and the stretches of a text it
// can match in: runs of the runes in says, holding at least least runes
// key says (an e-mail's "@", a phone's eight digits). Run over those
// stretches only, not over the whole text, a pattern costs a note of words
// next to nothing.
type finder struct {
	re      *regexp.Regexp
	in, key func(rune) bool
	least   int
	// apart, when set, says the runes a match may not touch: a CPF's eleven
	// digits are not eleven of an EAN's thirteen.
	apart func(rune) bool
}

// find hides what f finds in the text.
func (t *text) find(f finder) {
	start, keys := -1, 0
	stretch := func(end int) {
		if start >= 0 && keys >= f.least {
			for _, m := range f.re.FindAllStringIndex(t.s[start:end], -1) {
				from, to := start+m[0], start+m[1]
				if f.apart == nil || t.alone(from, to, f.apart) {
					t.hide = append(t.hide, span{from, to})
				}
			}
		}
		start, keys = -1, 0
	}
	for i, r := range t.s {
		if !f.in(r) {
			stretch(i)
			continue
		}
		if start < 0 {
			start = i
		}
		if f.key(r) {
			keys++
		}
	}
	stretch(len(t.s))
}

// hideWords hides each word of the text that, folded, is one of words
// (nameWords, addressWords). A word is a run of letters or of digits
// (eachWord): "Maria" is hidden in "Maria2" and "maria_souza", not in
// "Mariana"; "1500" in "nº 1500" and "1500A", not in "15000".
func (t *text) hideWords(words map[string]bool) {
	if len(words) == 0 {
		return
	}
	eachWord(t.s, func(from, to int, w []byte, _ bool) {
		if words[string(w)] {
			t.hide = append(t.hide, span{from, to})
		}
	})
}

// eachWord calls f with each word of s, where it stands and folded
// (foldRune): a run of letters, or a run of digits, with the accents
// written apart after them. w is only good until f returns.
func eachWord(s string, f func(from, to int, w []byte, digits bool)) {
	var w []byte
	start, digits := -1, false
	end := func(i int) {
		if start >= 0 {
			f(start, i, w, digits)
		}
		start = -1
	}
	for i, r := range s {
		digit := false
		switch {
		case unicode.Is(unicode.Mn, r) && start >= 0:
			continue
		case letterRune(r):
		case unicode.IsDigit(r):
			digit = true
		default:
			end(i)
			continue
		}
		if start >= 0 && digit != digits {
			end(i)
		}
		if start < 0 {
			start, digits, w = i, digit, w[:0]
		}
		if fr := foldRune(r); fr >= 0 {
			w = utf8.AppendRune(w, fr)
		}
	}
	end(len(s))
}

// nameWords adds to words each word of names, folded, that may name
// someone: not a particle (da, dos, e), not a company's kind (Ltda), not
// shorter than minKnown, not a number.
func nameWords(words map[string]bool, names ...string) map[string]bool {
	return addWords(words, names, func(w string, digits bool) bool { return !digits && !particles[w] })
}

// addressWords adds to words each word of an address (its street,
// number, complement, district), folded, that may lead to the customer's
// door: its numbers, and its words but a particle or a word any address
// has (placeWords: Rua, Bloco, Jardim), none shorter than minKnown. The
// city and the state are no one's: an event does not carry them, and a
// note keeps them.
func addressWords(words map[string]bool, values ...string) map[string]bool {
	return addWords(words, values, func(w string, digits bool) bool { return digits || !particles[w] && !placeWords[w] })
}

// addWords adds to words each word of values (eachWord), folded, of
// minKnown runes or more, that keep says may name someone.
func addWords(words map[string]bool, values []string, keep func(w string, digits bool) bool) map[string]bool {
	for _, v := range values {
		eachWord(v, func(_, _ int, b []byte, digits bool) {
			if w := string(b); utf8.RuneCountInString(w) >= minKnown && keep(w, digits) {
				if words == nil {
					words = map[string]bool{}
				}
				words[w] = true
			}
		})
	}
	return words
}

// commonPlace reports whether an address's value is made only of words
// any address has (Centro, Casa, Fundos) and particles: it names no one,
// and a note keeps "no centro" or "casa ao lado".
func commonPlace(v string) bool {
	common := true
	eachWord(v, func(_, _ int, b []byte, digits bool) {
		if digits || !particles[string(b)] && !placeWords[string(b)] {
			common = false
		}
	})
	return common
}

// particles are the words of a name that name no one: Portuguese
// particles, and the kinds of company a trade name may end with.
var particles = foldedSet("da", "de", "do", "das", "dos", "e", "ltda", "eireli", "epp", "mei")

// placeWords are the words of a Brazilian address that lead to no door:
// kinds of street and their abbreviations, parts of a building or a plot,
// where a complement says the door is, the words district names start with
// (Jardim Paulista, Vila Mariana, Parque São Lucas; Centro, a whole city's
// downtown), and the saints and titles streets are named after (São
// Bento, Doutor Arnaldo). Each is a common word of a note too ("deixar no
// jardim", "na portaria", "São Paulo"): the word beside it is the
// customer's, and goes.
var placeWords = foldedSet(
	// Streets.
	"rua", "avenida", "ave", "travessa", "alameda", "estrada", "rodovia", "praça", "largo", "beco", "viela",
	"via", "ladeira", "passagem", "servidão", "acesso", "marginal", "quadra", "lote",
	// Buildings, plots and where the door is.
	"bloco", "apto", "apt", "apartamento", "casa", "fundos", "frente", "sala", "andar", "loja", "sobrado",
	"térreo", "cobertura", "edifício", "prédio", "torre", "condomínio", "cond", "conjunto", "residencial",
	"galpão", "portaria", "portão", "próximo", "perto", "lado", "esquina", "entre", "sem", "número",
	// Districts.
	"jardim", "vila", "parque", "centro", "bairro", "setor", "núcleo", "loteamento", "chácara", "sítio",
	"fazenda", "zona", "norte", "sul", "leste", "oeste",
	// Saints and titles.
	"são", "santo", "santa", "dom", "dona", "padre", "frei", "doutor", "professor", "prof", "general",
	"marechal", "coronel", "major", "capitão", "tenente", "almirante", "brigadeiro", "presidente",
	"governador", "prefeito", "senador", "deputado", "vereador", "engenheiro", "ministro", "barão",
	"visconde", "conde", "princesa", "imperador",
)

// foldedSet is the set of words, folded.
func foldedSet(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[string(foldString(w))] = true
	}
	return m
}

// alone reports whether s[from:to] has no rune that inside tells before or
// after it.
func (t *text) alone(from, to int, inside func(rune) bool) bool {
	before, _ := utf8.DecodeLastRuneInString(t.s[:from])
	after, _ := utf8.DecodeRuneInString(t.s[to:])
	return !(before != utf8.RuneError && inside(before)) && !(after != utf8.RuneError && inside(after))
}

// redacted is the text with Redacted for each span hidden, those that
// overlap as one. With joined, spans apart only by spaces, or by a particle
// of a name between spaces, are one too: "Maria Souza" and "Maria de
// Souza" become "***", as a whole name does.
func (t *text) redacted(joined bool) string {
	if len(t.hide) == 0 {
		return t.s
	}
	slices.SortFunc(t.hide, func(a, b span) int { return a.from - b.from })
	var b strings.Builder
	last := 0
	cur := t.hide[0]
	for _, h := range t.hide[1:] {
		if h.from <= cur.to || joined && nameGap(t.s[cur.to:h.from]) {
			cur.to = max(cur.to, h.to)
			continue
		}
		b.WriteString(t.s[last:cur.from])
		b.WriteString(Redacted)
		last, cur = cur.to, h
	}
	b.WriteString(t.s[last:cur.from])
	b.WriteString(Redacted)
	b.WriteString(t.s[cur.to:])
	return b.String()
}

// nameGap reports whether gap, between two words of a name, is spaces
// only, or a particle between spaces.
func nameGap(gap string) bool {
	first, _ := utf8.DecodeRuneInString(gap)
	last, _ := utf8.DecodeLastRuneInString(gap)
	if !unicode.IsSpace(first) || !unicode.IsSpace(last) {
		return false
	}
	f := strings.Fields(gap)
	return len(f) == 0 || len(f) == 1 && particles[string(foldString(f[0]))]
}

// foldRune is what r is for matching a person's value, whatever its case
// and accents: the least rune of its simple case folding, after its
// accents; -1 for an accent written apart (a combining mark). "JOÃO",
// "joão" and "Joao" fold alike.
func foldRune(r rune) rune {
	if r >= 0 && r < rune(len(baseFold)) {
		return baseFold[r]
	}
	f := leastFold(r)
	if f < rune(len(baseFold)) {
		// The Kelvin sign is K, the Angstrom sign Å, so A.
		return baseFold[f]
	}
	if unicode.Is(unicode.Mn, r) {
		return -1
	}
	return f
}

func foldString(s string) []rune {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if f := foldRune(r); f >= 0 {
			out = append(out, f)
		}
	}
	return out
}

func leastFold(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

// baseFold is foldRune of the runes of the alphabets written with accents
// (Latin, Greek, Cyrillic, and the Latin letters of Vietnamese), decided
// once: a rune's canonical decomposition without its combining marks,
// case folded.
var baseFold = func() *[0x2000]rune {
	var t [0x2000]rune
	for r := range rune(len(t)) {
		if unicode.Is(unicode.Mn, r) {
			t[r] = -1
			continue
		}
		d := []rune(norm.NFD.String(string(r)))
		base := r
		if len(d) > 1 && !slices.ContainsFunc(d[1:], func(m rune) bool { return !unicode.Is(unicode.Mn, m) }) {
			base = d[0]
		}
		t[r] = leastFold(base)
	}
	return &t
}()

// A word is letters and digits, with their accents written apart.
func wordRune(r rune) bool {
	return letterRune(r) || unicode.IsDigit(r)
}

func letterRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Mn, r)
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

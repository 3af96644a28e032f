package personal

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// eventFields are the personal fields of the events (hipersync.events.v1),
// each with how it is shown masked, and eventFreeText those of a person's
// free text, which may hold any of them or a phone: the one place that
// knows which fields of an event name a customer. A field added to an event
// that names one belongs here (TestEventFieldsClassified fails until it
// is).
var (
	eventFields = map[protoreflect.FullName]func(string) string{
		"hipersync.events.v1.Customer.document":           MaskDocument,
		"hipersync.events.v1.Customer.state_registration": MaskDocument,
		"hipersync.events.v1.Customer.email":              MaskEmail,
		"hipersync.events.v1.Customer.name":               MaskWords,
		"hipersync.events.v1.Customer.trade_name":         MaskWords,
		"hipersync.events.v1.Address.street":              MaskWords,
		"hipersync.events.v1.Address.number":              maskAll,
		"hipersync.events.v1.Address.complement":          MaskWords,
		"hipersync.events.v1.Address.district":            MaskWords,
		"hipersync.events.v1.Address.postal_code":         maskPostalCode,
	}
	eventFreeText = map[protoreflect.FullName]bool{
		"hipersync.events.v1.StoreOrderApproved.notes": true,
	}
	// eventNames are the fields that name the customer, a person or a
	// company: a free text loses each word of them, as "entregar para
	// Maria" names Maria da Silva Souza.
	eventNames = map[protoreflect.FullName]bool{
		"hipersync.events.v1.Customer.name":       true,
		"hipersync.events.v1.Customer.trade_name": true,
	}
	// eventAddress are the fields of an address that lead to the
	// customer's door: a free text loses each word of them but those any
	// address has (addressWords), as "portaria da Augusta, bloco
	// Consolação" leads to Rua Augusta in Consolação.
	eventAddress = map[protoreflect.FullName]bool{
		"hipersync.events.v1.Address.street":     true,
		"hipersync.events.v1.Address.number":     true,
		"hipersync.events.v1.Address.complement": true,
		"hipersync.events.v1.Address.district":   true,
	}
)

// PersonalEventField reports whether MaskEvent hides the event field named
// (its full proto name: hipersync.events.v1.Customer.email).
func PersonalEventField(name protoreflect.FullName) bool {
	_, ok := eventFields[name]
	return ok || eventFreeText[name]
}

// MaskEvent hides, in place, the personal data of an event of
// hipersync.events.v1 (a store order's customer, its addresses, its
// notes), as the sync log shows it to whoever does not ask for it (events
// tail --reveal): each value keeps its field and a shape that helps on a
// call (the document's last two digits, j***@e***.com, the initials), but
// names no one. A free text (the notes) keeps its words but those that
// name or reach the customer, each become ***: the customer's values, each
// word of the names ("entregar para Maria" for Maria da Silva), each word
// and number of the address but those any address has ("portaria da
// Augusta, nº 1500" for Rua Augusta, 1500), any e-mail, phone, CPF or
// CNPJ. Events without personal data are left as they are.
func MaskEvent(m proto.Message) {
	if m == nil {
		return
	}
	r := m.ProtoReflect()
	// The values first: a free text is redacted of them all.
	var known []string
	var words map[string]bool
	walk(r, func(fd protoreflect.FieldDescriptor, v string) string {
		name := fd.FullName()
		// An address's "Centro" or "Casa" is no one's: a note keeps "no
		// centro" and "a casa ao lado".
		if _, ok := eventFields[name]; ok && !slices.Contains(known, v) && !(eventAddress[name] && commonPlace(v)) {
			known = append(known, v)
		}
		switch {
		case eventNames[name]:
			words = nameWords(words, v)
		case eventAddress[name]:
			words = addressWords(words, v)
		}
		return v
	})
	walk(r, func(fd protoreflect.FieldDescriptor, v string) string {
		if mask, ok := eventFields[fd.FullName()]; ok {
			return mask(v)
		}
		if eventFreeText[fd.FullName()] {
			return redactFreeText(v, words, known)
		}
		return v
	})
}

// redactFreeText hides in a person's text (an order's notes) what Redact
// does, each of the customer's words (those of its names, nameWords, and
// of its address, addressWords), any phone number, and any CPF or CNPJ
// however it is punctuated, or not at all.
func redactFreeText(s string, words map[string]bool, known []string) string {
	t := &text{s: s}
	t.hideValues(known)
	t.hideWords(words)
	t.find(looseDocuments)
	t.find(phones)
	return t.redacted(true)
}

// walk calls f with each set string field of m and its nested messages,
// and sets the field to what f returns.
func walk(m protoreflect.Message, f func(protoreflect.FieldDescriptor, string) string) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), f)
			}
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				walk(mv.Message(), f)
				return true
			})
		case fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap():
			walk(v.Message(), f)
		case fd.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap():
			if s := v.String(); s != "" {
				if out := f(fd, s); out != s {
					m.Set(fd, protoreflect.ValueOfString(out))
				}
			}
		}
		return true
	})
}

// MaskEmail keeps an address's first letter, its domain's first letter and
// its top-level domain: ana.souza@empresa.com.br is a***@e***.com.br. Not an
// address, it is masked as words.
func MaskEmail(s string) string {
	s = strings.TrimSpace(s)
	if !wholeEmail.MatchString(s) {
		return MaskWords(s)
	}
	local, domain, _ := strings.Cut(s, "@")
	labels := strings.Split(domain, ".")
	// The suffix kept: the last label, and a short one before a country's
	// (com.br, org.br, co.uk), which say nothing of who.
	tld := 1
	if n := len(labels); n > 2 && len(labels[n-1]) == 2 && len(labels[n-2]) <= 3 {
		tld = 2
	}
	return initial(local) + "@" + initial(labels[0]) + "." + strings.Join(labels[len(labels)-tld:], ".")
}

var wholeEmail = regexp.MustCompile(`^(?:` + emailPattern.String() + `)$`)

// MaskWords keeps the first letter of each word: Ana Souza is A*** S***.
func MaskWords(s string) string {
	f := strings.Fields(s)
	for i, w := range f {
		f[i] = initial(w)
	}
	return strings.Join(f, " ")
}

// initial is w's first letter and Redacted.
func initial(w string) string {
	r, _ := utf8.DecodeRuneInString(w)
	if r == utf8.RuneError || !(unicode.IsLetter(r) || unicode.IsDigit(r)) {
		return Redacted
	}
	return string(r) + Redacted
}

// maskAll hides every letter and digit of s, keeping its length and
// punctuation.
func maskAll(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return '*'
		}
		return r
	}, s)
}

// maskPostalCode keeps a CEP's first five digits (its region and sector,
// which a street's suffix would narrow to a door): 01310-100 is 01310-***.
// What is not a CEP is masked whole.
func maskPostalCode(s string) string {
	if !cepPattern.MatchString(s) {
		return maskAll(s)
	}
	digits := 0
	return strings.Map(func(r rune) rune {
		if !unicode.IsDigit(r) {
			return r
		}
		if digits++; digits <= 5 {
			return r
		}
		return '*'
	}, s)
}

var cepPattern = regexp.MustCompile(`^\s*\d{5}[\s.-]?\d{3}\s*$`)

// phonePattern is a Brazilian phone number as people write it: an optional
// +55, an optional area code, then eight or nine digits, the last four
// apart or not; never part of a longer number (an EAN).
var phonePattern = regexp.MustCompile(`(?:\+55[\s.-]?)?(?:\(\d{2}\)[\s.-]?|\b\d{2}[\s.-]?|\b)9?\d{4}[\s.-]?\d{4}\b`)

// loosePattern is a CNPJ's fourteen digits or a CPF's eleven, with or
// without their punctuation (or spaces) where it goes: as a person writes
// one in a note.
var loosePattern = regexp.MustCompile(`\d{2}[. ]?\d{3}[. ]?\d{3}[/ ]?\d{4}[-. ]?\d{2}|\d{3}[. ]?\d{3}[. ]?\d{3}[-. /]?\d{2}`)

var (
	phones         = finder{re: phonePattern, in: numberRune, key: isDigit, least: 8}
	looseDocuments = finder{re: loosePattern, in: numberRune, key: isDigit, least: 11, apart: unicode.IsDigit}
)

// isDigit is a digit a pattern's \d matches.
func isDigit(r rune) bool { return '0' <= r && r <= '9' }

// numberRune is a rune of a number as people write it: digits, spaces and
// punctuation.
func numberRune(r rune) bool {
	switch r {
	case ' ', '.', '(', ')', '+', '/', '-', '\t', '\n', '\r', '\f':
		return true
	}
	return '0' <= r && r <= '9' || r >= utf8.RuneSelf && unicode.IsDigit(r)
}

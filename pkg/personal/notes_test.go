package personal_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/personal"
)

// maskedNotes is an order's notes as support reads them in the sync log
// and on the order's page: its approval masked.
func maskedNotes(name, tradeName, notes string) string {
	o := &eventsv1.StoreOrderApproved{OrderId: "1001",
		Customer: &eventsv1.Customer{Document: "52998224725", Email: "cliente@example.com", Name: name, TradeName: tradeName},
		Notes:    notes}
	personal.MaskEvent(o)
	return o.GetNotes()
}

// What support reads of a note that names the customer in part: each word
// of the name goes, whatever its case or accents, as a word of its own
// only; a name's particles and short words stay, and so does what names no
// one.
func TestMaskEventNotesNameParts(t *testing.T) {
	t.Parallel()
	const maria = "Maria da Silva Souza"
	tests := []struct{ name, trade, notes, want string }{
		// Part of the name, in any case.
		{maria, "", "entregar para Maria na portaria", "entregar para *** na portaria"},
		{maria, "", "falar com SILVA", "falar com ***"},
		{maria, "", "falar com souza, no bloco B", "falar com ***, no bloco B"},
		{maria, "", "recado: maria", "recado: ***"},
		// Parts together are one, as the whole name is.
		{maria, "", "Maria Souza recebe", "*** recebe"},
		{maria, "", "Maria   da Silva vai buscar", "*** vai buscar"},
		{maria, "", "Maria da Silva Souza", "***"},
		{maria, "", "Maria e Souza", "***"},
		{maria, "", "Souza, Maria", "***, ***"},
		// Accents, either way.
		{"João Conceição", "", "deixar com joao conceicao", "deixar com ***"},
		{"João Conceição", "", "deixar com JOÃO", "deixar com ***"},
		{"Joao Conceicao", "", "deixar com João e Conceição", "deixar com ***"},
		{"João Conceição", "", "deixar com Joa\u0303o", "deixar com ***"}, // the tilde apart (NFD)
		{"Jose\u0301 Araújo", "", "ligar para José ARAUJO", "ligar para ***"},
		// Whole words only.
		{"Ana Souza", "", "Banana, Mariana e Anápolis; Souzas; Ana", "Banana, Mariana e Anápolis; Souzas; ***"},
		{maria, "", "Silvana ou Marias", "Silvana ou Marias"},
		{maria, "", "Maria2 e maria_souza", "***2 e ***_***"},
		// Particles and short parts name no one.
		{"Ana dos Santos Li", "", "entregar dos fundos com Li", "entregar dos fundos com Li"},
		{"Ana dos Santos Li", "", "Ana dos Santos", "***"},
		{"Pedro de Oliveira e Sá", "", "de manhã e à tarde, Sá", "de manhã e à tarde, Sá"},
		// The trade name's words, not its company kind.
		{"Padaria Joana Ltda", "Joana Pães", "nota para a Joana, da padaria; empresa Ltda", "nota para a ***, da ***; empresa Ltda"},
		{"", "Pães da Joana", "falar com a joana dos paes", "falar com a ***"},
		// Already masked stays masked; nothing to mask is left alone.
		{maria, "", "*** Souza na portaria", "*** *** na portaria"},
		{maria, "", "sem observações", "sem observações"},
		{"", "", "entregar para Maria", "entregar para Maria"},
	}
	for _, tt := range tests {
		if got := maskedNotes(tt.name, tt.trade, tt.notes); got != tt.want {
			t.Errorf("customer %q/%q, notes %q: support reads %q, want %q", tt.name, tt.trade, tt.notes, got, tt.want)
		}
	}
}

// maskedAddressNotes is an order's notes as support reads them, the
// order shipped to addr and billed to billing.
func maskedAddressNotes(addr, billing *eventsv1.Address, notes string) string {
	o := &eventsv1.StoreOrderApproved{OrderId: "1001", Customer: &eventsv1.Customer{Name: "Maria Souza"},
		ShippingAddress: proto.CloneOf(addr), BillingAddress: proto.CloneOf(billing), Notes: notes}
	personal.MaskEvent(o)
	return o.GetNotes()
}

// What support reads of a note that says where the customer lives in part:
// each word of the street, complement and district goes, as a name's do,
// and the address's numbers; the words any address has (Rua, Bloco,
// Jardim), the city, the state, and what merely looks alike stay.
func TestMaskEventNotesAddressParts(t *testing.T) {
	t.Parallel()
	augusta := &eventsv1.Address{Street: "Rua Augusta", Number: "1500", Complement: "Apto 121 Bloco B", District: "Consolação",
		PostalCode: "01310-100", IbgeCityCode: "3550308"}
	tests := []struct {
		addr, billing *eventsv1.Address
		notes, want   string
	}{
		// Words of the street and the district, in any case, with or
		// without accents.
		{augusta, nil, "deixar na portaria da Augusta, bloco Consolação", "deixar na portaria da ***, bloco ***"},
		{augusta, nil, "AUGUSTA esquina com consolacao", "*** esquina com ***"},
		{augusta, nil, "bairro Consolação", "bairro ***"}, // the accents apart (NFD)
		// The address's numbers, as figures of their own.
		{augusta, nil, "nº 1500, fundos", "nº ***, fundos"},
		{augusta, nil, "Augusta 1500", "***"},
		{augusta, nil, "apto 121, interfone", "apto ***, interfone"},
		{augusta, nil, "casa 1500A", "casa ***A"},
		// The whole value, as before.
		{augusta, nil, "Rua Augusta, 1500 - Apto 121 Bloco B", "***, *** - ***"},
		// Both addresses.
		{augusta, &eventsv1.Address{Street: "Rua Harmonia", District: "Vila Madalena"}, "cobrar na Harmonia, entregar na Augusta; Madalena",
			"cobrar na ***, entregar na ***; ***"},
		// What names no one stays: the city, the state, an address's common
		// words, a word or a figure that only contains the customer's.
		{augusta, nil, "São Paulo - SP, capital", "São Paulo - SP, capital"},
		{augusta, nil, "deixar na portaria, casa dos fundos, bloco B, rua de trás", "deixar na portaria, casa dos fundos, bloco B, rua de trás"},
		{augusta, nil, "Augustas, Augustinho, Consolações", "Augustas, Augustinho, Consolações"},
		{augusta, nil, "pedido 15000, 2 volumes", "pedido 15000, 2 volumes"},
		// Short numbers are anyone's: a quantity, a day.
		{&eventsv1.Address{Street: "Rua Augusta", Number: "12", Complement: "Casa 2"}, nil, "2 volumes até dia 12", "2 volumes até dia 12"},
		// A common place as a whole value names no one either.
		{&eventsv1.Address{Street: "Rua Augusta", Complement: "Casa", District: "Centro"}, nil, "casa amarela no centro", "casa amarela no centro"},
		// A district's common word stays, its own goes.
		{&eventsv1.Address{Street: "Alameda Santos", District: "Jardim Paulista"}, nil, "perto do jardim da Paulista, Santos", "perto do jardim da ***, ***"},
		// A street's saint or title stays, its name goes; so does the
		// city it shares a word with.
		{&eventsv1.Address{Street: "Avenida São João", District: "Centro"}, nil, "São Paulo, São João", "São Paulo, São ***"},
		{&eventsv1.Address{Street: "Rua Doutor Arnaldo"}, nil, "doutor, falar com o Arnaldo", "doutor, falar com o ***"},
		// The customer's number is hidden wherever it is a figure of its
		// own, whatever it counts: a note cannot tell.
		{&eventsv1.Address{Street: "Rua Augusta", Number: "100"}, nil, "troco para 100 reais (R$ 100,00), pedido 1100", "troco para *** reais (R$ ***,00), pedido 1100"},
	}
	for _, tt := range tests {
		if got := maskedAddressNotes(tt.addr, tt.billing, tt.notes); got != tt.want {
			t.Errorf("address %v, notes %q: support reads %q, want %q", tt.addr, tt.notes, got, tt.want)
		}
	}
}

// A CPF, a CNPJ, an e-mail or a phone in a note, anyone's, is hidden
// however it is written; a barcode or an order's number is not.
func TestMaskEventNotesDocuments(t *testing.T) {
	t.Parallel()
	tests := []struct{ notes, want string }{
		{"CPF 111.444.777-35", "CPF ***"},
		{"cpf do recebedor 11144477735", "cpf do recebedor ***"},
		{"cpf: 111 444 777 35.", "cpf: ***."},
		{"CPF:11144477735", "CPF:***"},
		{"cpf 111444777-35", "cpf ***"},
		{"CNPJ 11222333000181 ou 11.222.333/0001-81", "CNPJ *** ou ***"},
		{"CNPJ 12.ABC.345/01DE-35", "CNPJ ***"},
		{"nf para joão.souza@empresa.com.br", "nf para ***"},
		{"whats +55 11 98765-4321", "whats ***"},
		// Not personal: an EAN, a longer number, money, a date.
		{"EAN 7891234567895, pedido 2000001234567890", "EAN 7891234567895, pedido 2000001234567890"},
		{"troco para R$ 100,00 em 10/12/2026", "troco para R$ 100,00 em 10/12/2026"},
	}
	for _, tt := range tests {
		if got := maskedNotes("Maria Souza", "", tt.notes); got != tt.want {
			t.Errorf("notes %q: support reads %q, want %q", tt.notes, got, tt.want)
		}
	}
}

// Masking what is masked changes nothing: the log may show a record's
// masked approval again.
func TestMaskEventNotesTwice(t *testing.T) {
	t.Parallel()
	o := &eventsv1.StoreOrderApproved{
		Customer:        &eventsv1.Customer{Name: "Maria da Silva Souza", TradeName: "Padaria Joana"},
		ShippingAddress: &eventsv1.Address{Street: "Rua Augusta", Number: "1500", District: "Consolação"},
		Notes:           "entregar para Maria Souza (11) 98765-4321, cpf 11144477735, padaria; nº 1500 da Augusta",
	}
	personal.MaskEvent(o)
	once := proto.Clone(o)
	personal.MaskEvent(o)
	if !proto.Equal(o, once) || o.GetNotes() != "entregar para ***, cpf ***, ***; nº ***" {
		t.Fatalf("masked once %v, twice %v", once, o)
	}
}

// No word of the customer's names of three letters or more, but a
// particle, is left in the notes, whatever the name and the notes.
func FuzzMaskEventNotes(f *testing.F) {
	f.Add("Maria da Silva Souza", "Padaria Joana", "entregar para Maria na portaria, falar com SILVA")
	f.Add("João Conceição", "", "deixar com joao conceicao ou JOÃO")
	f.Add("Ana dos Santos", "Ana Ltda", "Banana em Anápolis; ana; dos Santos")
	f.Add("Jose\u0301", "\u212Aelvin", "jose JOSÉ kelvin Maria11987654321")
	f.Fuzz(func(t *testing.T, name, trade, notes string) {
		if !utf8.ValidString(name) || !utf8.ValidString(trade) || !utf8.ValidString(notes) {
			t.Skip("a store event's text is UTF-8")
		}
		got := maskedNotes(name, trade, notes)
		var parts []string
		for _, w := range letterWords(name + " " + trade) {
			if len([]rune(w)) >= 3 && !particle(w) && latin(w) {
				parts = append(parts, w)
			}
		}
		for _, w := range letterWords(got) {
			for _, p := range parts {
				if strings.EqualFold(w, p) {
					t.Fatalf("customer %q/%q, notes %q: %q still names %q", name, trade, notes, got, p)
				}
			}
		}
	})
}

// No word of the customer's street, complement or district of three
// letters or more, but a particle or a word any address has, and none of
// the address's numbers of three digits or more, is left in the notes as a
// word or a figure of its own, whatever the address and the notes.
func FuzzMaskEventNotesAddress(f *testing.F) {
	f.Add("Rua Augusta", "1500", "Apto 121 Bloco B", "Consolação", "deixar na portaria da Augusta, nº 1500, bloco Consolação")
	f.Add("Avenida São João", "12", "Casa", "Centro", "São Paulo, são joao 12, casa no centro")
	f.Add("Alameda Santos", "S/N", "Fundos", "Jardim Paulista", "jardim PAULISTA, santos1500,00")
	f.Add("R. José́", "1500A", "Sala 1203", "Vila Mariana", "jose 1.500 1203 mariana1500")
	f.Fuzz(func(t *testing.T, street, number, complement, district, notes string) {
		for _, s := range []string{street, number, complement, district, notes} {
			if !utf8.ValidString(s) {
				t.Skip("a store event's text is UTF-8")
			}
		}
		got := maskedAddressNotes(&eventsv1.Address{Street: street, Number: number, Complement: complement, District: district}, nil, notes)
		fields := street + " " + number + " " + complement + " " + district
		for _, w := range letterWords(fields) {
			if len([]rune(w)) < 3 || particle(w) || personal.PlaceWord(w) || !latin(w) {
				continue
			}
			for _, g := range letterWords(got) {
				if strings.EqualFold(g, w) {
					t.Fatalf("address %q, notes %q: %q still leads to %q", fields, notes, got, w)
				}
			}
		}
		for _, n := range figures(fields) {
			if len([]rune(n)) < 3 {
				continue
			}
			for _, g := range figures(got) {
				if g == n {
					t.Fatalf("address %q, notes %q: %q still holds %q", fields, notes, got, n)
				}
			}
		}
	})
}

// figures are the runs of digits of s, each without the accents written
// apart in it.
func figures(s string) []string { return runs(s, unicode.IsDigit) }

// letterWords are the runs of letters of s, each without its accents.
func letterWords(s string) []string { return runs(s, unicode.IsLetter) }

// runs are the runs of s, decomposed (NFD), of the runes in says, each
// without its accents.
func runs(s string, in func(rune) bool) []string {
	var out []string
	for _, w := range strings.FieldsFunc(norm.NFD.String(s), func(r rune) bool { return !in(r) && !unicode.Is(unicode.Mn, r) }) {
		if w = strings.Map(func(r rune) rune {
			if unicode.Is(unicode.Mn, r) {
				return -1
			}
			return r
		}, w); w != "" {
			out = append(out, w)
		}
	}
	return out
}

func particle(w string) bool {
	for _, p := range []string{"da", "de", "do", "das", "dos", "e", "ltda", "eireli", "epp", "mei"} {
		if strings.EqualFold(w, p) {
			return true
		}
	}
	return false
}

// latin: the fuzz test holds names of Latin letters to it (those of the
// customers hipersync sees); other scripts' decompositions are not
// promised.
func latin(w string) bool {
	for _, r := range w {
		if !unicode.Is(unicode.Latin, r) {
			return false
		}
	}
	return true
}

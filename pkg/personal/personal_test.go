package personal_test

import (
	"testing"

	"github.com/hipersync/hipersync/pkg/personal"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	known := []string{"52998224725", "ana@example.com", "Ana Souza", "Rua Principal", "01"}
	tests := []struct{ in, want string }{
		{"Cliente Ana Souza já cadastrado", "Cliente *** já cadastrado"},
		{"cliente ANA SOUZA (52998224725)", "cliente *** (***)"},
		{"documento 529.982.247-25 inválido", "documento *** inválido"},
		{"CNPJ 12.ABC.345/01DE-35 e 11.222.333/0001-81", "CNPJ *** e ***"},
		{"e-mail outro.nome+x@mail.example.com.br em uso", "e-mail *** em uso"},
		{"e-mail joão.conceição@empresa.com.br em uso", "e-mail *** em uso"},
		{"Rua Principal, 01", "***, 01"},
		// Not personal: a shorter known value, a name inside a word, codes.
		{"análise de Ana Souzaa: item 01, EAN 7891234567895", "análise de Ana Souzaa: item 01, EAN 7891234567895"},
		{"itens[0].produtoId d23b6f89-fb47-4e90-8f62-3dbe5576f0f8", "itens[0].produtoId d23b6f89-fb47-4e90-8f62-3dbe5576f0f8"},
	}
	for _, tt := range tests {
		if got := personal.Redact(tt.in, known...); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A value is found however it is cased, in letters a case-insensitive
// match takes for its own: the Kelvin sign for K, the long s for s.
func TestRedactFoldsCase(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"cliente \u212Aelvin Dia\u017F": "cliente ***",
		"cliente KELVIN DIAS":           "cliente ***",
		"cliente Kelvin Diasx":          "cliente Kelvin Diasx",
	} {
		if got := personal.Redact(in, "", "x", "kelvin dias"); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// A value is found with or without its accents, written together (NFC) or
// apart (NFD): Hiper may answer "JOAO" for João.
func TestRedactFoldsAccents(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"cliente JOAO DA CONCEICAO":                   "cliente ***",
		"cliente João da Conceição":                   "cliente ***",
		"cliente Joa\u0303o da Conceic\u0327a\u0303o": "cliente ***",
		"rua José, 10":                                "rua ***, 10",
		"rua Jose\u0301":                              "rua ***",
		"cliente Joãozinho da Conceição":              "cliente Joãozinho da Conceição",
		"rua Josés":                                   "rua Josés",
	} {
		if got := personal.Redact(in, "João da Conceição", "Jose"); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskDocument(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"52998224725": "*********25", "12ABC34501DE35": "************35", "7": "*", "": ""} {
		if got := personal.MaskDocument(in); got != want {
			t.Errorf("MaskDocument(%q) = %q, want %q", in, got, want)
		}
	}
}

package tenant

import (
	"errors"
	"strings"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// Codes of a tenant's state reason (Tenant.state_reason_code). The reason's
// text, in Portuguese, is what the merchant reads in the console and what
// `hipersync tenant show` and `hipersync status` print.
const (
	ReasonPausedByOperator       = "paused_by_operator"
	ReasonDisconnectedByOperator = "disconnected_by_operator"
	// ReasonKeyRefused: a key offered to connect the tenant was refused.
	ReasonKeyRefused = "key_refused"
	// ReasonStoredKeyRefused: Hiper stopped accepting the stored key
	// (revoked or changed in Hiper).
	ReasonStoredKeyRefused = "stored_key_refused"
)

// StateReason is why a tenant is in its state: a stable code and the text
// the merchant reads.
type StateReason struct {
	Code string
	Text string
}

// keyAction is what to do about a refused key (seed 004: the key is under
// Vendas > Loja virtual > Configurações).
const keyAction = " Copie a chave em Vendas > Loja virtual > Configurações, no Hiper, e conecte a loja de novo."

// PausedReason is the reason of a tenant an operator paused.
func PausedReason() StateReason {
	return StateReason{ReasonPausedByOperator,
		"A sincronização da loja foi pausada por um operador; a chave de segurança foi mantida. Retome a loja para voltar a sincronizar."}
}

// DisconnectedReason is the reason of a tenant an operator disconnected.
func DisconnectedReason() StateReason {
	return StateReason{ReasonDisconnectedByOperator,
		"A loja foi desconectada do Hiper por um operador e a chave de segurança, apagada." + keyAction}
}

// KeyRefusedReason is the reason of a tenant whose key Hiper refused: one
// offered to connect it (stored false) or the one it had (stored true).
// Hiper's own words, when err carries them, are quoted.
func KeyRefusedReason(stored bool, err error) StateReason {
	r := StateReason{ReasonKeyRefused, "O Hiper recusou a chave de segurança informada"}
	if stored {
		r = StateReason{ReasonStoredKeyRefused, "O Hiper deixou de aceitar a chave de segurança da loja (foi trocada ou revogada no Hiper)"}
	}
	if said := hiperWords(err); said != "" {
		r.Text += ` (resposta do Hiper: "` + said + `")`
	}
	r.Text += "." + keyAction
	return r
}

// hiperWords is what Hiper said in the answer err carries, if anything.
func hiperWords(err error) string {
	var he *hiper.Error
	if !errors.As(err, &he) {
		return ""
	}
	words := he.Errors
	if he.Message != "" {
		words = append(words[:len(words):len(words)], he.Message)
	}
	return strings.TrimSpace(strings.Join(words, "; "))
}

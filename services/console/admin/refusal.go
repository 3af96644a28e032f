package admin

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/natsauth"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// What the API checks itself. Their messages are what callers read in
// English; refusals gives each its code and Portuguese text.
var (
	// ErrOperatorsOnly is a store-role caller making an operator's call.
	ErrOperatorsOnly = fmt.Errorf("%w: operators only", auth.ErrPermissionDenied)
	// ErrTenantRequired is a call that must name one tenant and names none.
	ErrTenantRequired = errors.New("tenant_id is required")

	errResolution = errors.New("give hiper_order_id (the order is in Hiper) or resend (it is not)")
	errOrderState = fmt.Errorf("want one of %v", orders.States)
	errSyncKind   = errors.New("want catalog or stock")
	errExpiry     = errors.New("expires must not be negative")
)

// ErrorDomain is the domain of the ErrorInfo every error of the API
// carries; its Reason is the refusal's code. It is the one domain of
// hipersync's errors, token-broker's included (tenant.ErrorDomain).
const ErrorDomain = tenant.ErrorDomain

// Locale is the locale of the LocalizedMessage every error carries.
const Locale = "pt-BR"

// Refusal is an error of the API as a support person reads it: a stable
// code (ErrorInfo's reason) and, in Portuguese, what happened and what to
// do. The English message stays the error's, for logs and API clients.
type Refusal struct {
	Code string
	Text string
}

// refusals is every code the API answers with, and the one place its
// Portuguese text is written (docs/console.md lists them). An error takes
// the first entry whose err it matches (errors.Is), so a specific error
// comes before the one it wraps; one that matches none takes the entry
// whose fallback is its connect code, and internal_error without one.
var refusals = []struct {
	err      error
	fallback connect.Code
	Refusal
}{
	{ErrOperatorsOnly, 0, Refusal{"operators_only",
		"Só um operador da implantação pode fazer isto. Peça a um operador."}},
	{auth.ErrOtherTenant, 0, Refusal{"tenant_forbidden",
		"Esta chave só dá acesso à sua própria loja. Para outra loja, use a chave dela ou peça a um operador."}},
	{auth.ErrPermissionDenied, connect.CodePermissionDenied, Refusal{"permission_denied",
		"Sua credencial não permite isto. Peça a um operador o acesso de que precisa."}},
	{auth.ErrUnauthenticated, connect.CodeUnauthenticated, Refusal{"unauthenticated",
		"Chave ou token não aceito (inválido, revogado ou expirado). Entre de novo no console ou confira HIPERSYNC_TOKEN."}},
	{ErrRateLimited, 0, Refusal{"rate_limited",
		"Muitas chamadas desta chave em pouco tempo. Espere alguns segundos e tente de novo; uma integração deve espaçar as chamadas."}},
	{ErrTenantRequired, 0, Refusal{"tenant_required",
		"Informe a loja (tenant_id)."}},
	{tenant.ErrInvalidID, 0, Refusal{"tenant_id_invalid",
		"Identificador de loja inválido: use de 1 a 64 caracteres entre a-z, 0-9, '_' e '-'."}},
	{tenant.ErrUnknown, 0, Refusal{"tenant_not_found",
		"Loja não cadastrada. Confira o identificador; uma loja nova é conectada por um operador (hipersync tenant connect)."}},
	{tenant.ErrPaused, 0, Refusal{"tenant_paused",
		"A loja está pausada. Retome a loja (botão Retomar ou hipersync tenant resume) e tente de novo."}},
	{tenant.ErrNotConnected, 0, Refusal{"tenant_not_connected",
		"A loja não está conectada ao Hiper. Conecte-a com a chave de segurança do Hiper (hipersync tenant connect) e tente de novo."}},
	{ops.ErrNotSyncing, 0, Refusal{"tenant_not_active",
		"A loja não está ativa e nada sincroniza até que esteja. Retome ou conecte a loja e tente de novo."}},
	// The same code and text as the tenant's state reason.
	{tenant.ErrKeyRefused, 0, Refusal(tenant.KeyRefusedReason(true, nil))},
	{tenant.ErrInvalidKey, 0, Refusal(tenant.KeyRefusedReason(false, nil))},
	{ErrNotAudited, 0, Refusal{"reveal_not_audited",
		"Os dados pessoais não foram mostrados: o registro de auditoria não pôde gravar quem os viu. Tente de novo; se continuar, avise um operador (o NATS pode estar sem espaço ou sem permissão)."}},
	{tenant.ErrHiperUnavailable, 0, Refusal{"hiper_unavailable",
		"O Hiper não respondeu. Tente de novo em alguns minutos."}},
	{orders.ErrNotFound, 0, Refusal{"order_not_found",
		"Pedido não encontrado nesta loja. Confira o número do pedido."}},
	{orders.ErrWrongState, 0, Refusal{"order_wrong_state",
		"A situação do pedido não permite isto (só se resolve um pedido em revisão ou com falha). Atualize a página e confira a situação."}},
	{orders.ErrInvalidHiperID, 0, Refusal{"hiper_order_id_invalid",
		"O identificador do pedido no Hiper deve ser um UUID, como o Hiper o mostra."}},
	{errResolution, 0, Refusal{"resolution_required",
		"Diga como resolver: informe o identificador do pedido no Hiper (se ele já está lá) ou peça o reenvio (se não está)."}},
	{errOrderState, 0, Refusal{"order_state_invalid",
		"Situação de pedido desconhecida: use uma das situações da lista."}},
	{errSyncKind, 0, Refusal{"sync_kind_invalid",
		"Tipo de sincronização desconhecido: use catalog (catálogo) ou stock (estoque)."}},
	{errExpiry, 0, Refusal{"expiry_invalid",
		"A validade das credenciais não pode ser negativa."}},
	{events.ErrDeadLetterNotFound, 0, Refusal{"dead_letter_not_found",
		"Mensagem com falha não encontrada nesta loja: talvez já tenha sido reenviada. Atualize a lista."}},
	{ops.ErrNothingHeld, 0, Refusal{"nothing_held",
		"Não há alteração retida para aprovar. Atualize a página."}},
	{natsauth.ErrNoSigningKey, 0, Refusal{"no_signing_key",
		"Esta implantação não emite credenciais NATS para lojas (falta " + natsauth.SigningKeyEnv + " no console). Peça a um operador."}},
	{natsauth.ErrNoRevocation, 0, Refusal{"no_revocation",
		"Revogar credenciais exige " + natsauth.SigningKeyEnv + ", " + natsauth.OperatorKeyEnv + " e " + natsauth.SystemCredsEnv + " no console. Peça a um operador."}},
	{natsauth.ErrNotEnforced, 0, Refusal{"permissions_not_enforced",
		"O NATS não aplica as permissões da loja com esta chave de assinatura, então nenhuma credencial foi entregue. Peça a um operador que confira a conta NATS."}},
	{tenant.ErrInvalid, connect.CodeInvalidArgument, Refusal{"request_invalid",
		"A chamada tem um valor inválido (o detalhe, em inglês, vem junto). Corrija e tente de novo."}},
	{nil, connect.CodeNotFound, Refusal{"not_found",
		"Não encontrado. Confira o que foi pedido e atualize a página."}},
	{nil, connect.CodeFailedPrecondition, Refusal{"precondition_failed",
		"A situação atual não permite isto. Atualize a página, confira a situação e tente de novo."}},
	{context.DeadlineExceeded, connect.CodeDeadlineExceeded, Refusal{"timeout",
		"A operação passou do tempo limite. Confira a situação da loja e tente de novo."}},
	{context.Canceled, connect.CodeCanceled, Refusal{"canceled",
		"A operação foi cancelada antes de terminar. Tente de novo."}},
	{nil, connect.CodeUnavailable, Refusal{"unavailable",
		"Um serviço do hipersync não respondeu. Tente de novo em alguns minutos."}},
	{nil, connect.CodeInternal, Refusal{"internal_error",
		"Erro interno do hipersync. Tente de novo; se continuar, avise um operador com o horário do erro."}},
}

// Refusals is every code and text of the API, in the table's order.
func Refusals() []Refusal {
	out := make([]Refusal, len(refusals))
	for i, r := range refusals {
		out[i] = r.Refusal
	}
	return out
}

// refusalOf is the refusal of err, answered with code.
func refusalOf(code connect.Code, err error) Refusal {
	for _, r := range refusals {
		if r.err != nil && errors.Is(err, r.err) {
			return r.Refusal
		}
	}
	var internal Refusal
	for _, r := range refusals {
		switch r.fallback {
		case code:
			return r.Refusal
		case connect.CodeInternal:
			internal = r.Refusal
		}
	}
	return internal
}

// refusalOfError is the refusal err carries, or the one the API would give
// it (the same lookup as wrap's).
func refusalOfError(err error) Refusal {
	if r, ok := RefusalOf(err); ok {
		return r
	}
	return refusalOf(Code(err), err)
}

// RefusalByCode is the refusal of a code, as the API answers it now: what
// a reader of the audit log, which keeps only the code, is shown. False
// for a code the table no longer has.
func RefusalByCode(code string) (Refusal, bool) {
	for _, r := range refusals {
		if r.Code == code && code != "" {
			return r.Refusal, true
		}
	}
	return Refusal{}, false
}

// newError is connect.NewError with the error's refusal: every error the
// API makes goes through it (or wrap).
func newError(code connect.Code, err error) *connect.Error {
	return withRefusal(connect.NewError(code, err))
}

// withRefusal adds ce's refusal to its details, unless they have one: an
// ErrorInfo (reason: the code; domain: ErrorDomain) and a LocalizedMessage
// in Locale.
func withRefusal(ce *connect.Error) *connect.Error {
	if _, ok := RefusalOf(ce); ok {
		return ce
	}
	r := refusalOf(ce.Code(), ce.Unwrap())
	for _, m := range []proto.Message{
		&errdetails.ErrorInfo{Reason: r.Code, Domain: ErrorDomain},
		&errdetails.LocalizedMessage{Locale: Locale, Message: r.Text},
	} {
		if d, err := connect.NewErrorDetail(m); err == nil {
			ce.AddDetail(d)
		}
	}
	return ce
}

// RefusalOf reads the refusal an error of the API carries, as a client
// (the CLI, the web console) receives it; false for an error without one
// (not from the API, or from a console older than the codes).
func RefusalOf(err error) (Refusal, bool) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return Refusal{}, false
	}
	var r Refusal
	for _, d := range ce.Details() {
		v, err := d.Value()
		if err != nil {
			continue
		}
		switch m := v.(type) {
		case *errdetails.ErrorInfo:
			if m.GetDomain() == ErrorDomain {
				r.Code = m.GetReason()
			}
		case *errdetails.LocalizedMessage:
			if m.GetLocale() == Locale {
				r.Text = m.GetMessage()
			}
		}
	}
	return r, r.Code != ""
}

package order

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/services/invoice-watcher/notes"
)

// maxProblemValue bounds the value a problem quotes.
const maxProblemValue = 200

// Invoice is the invoice.issued event of Hiper's event 3. It carries every
// field Hiper sent valid; each missing or invalid one is left empty and
// listed in problems, so the store learns of the invoice in any case and
// knows what not to trust. The number comes from the note; when the note
// has none, from the access key, which also gives the series and, when
// Hiper sent none, the document type.
func Invoice(r *Record, ev hiper.OrderEvent) *eventsv1.InvoiceIssued {
	inv := &eventsv1.InvoiceIssued{
		OrderId: r.OrderID, HiperOrderId: r.HiperOrderID, IssuedAt: timestamp(ev.Date), Note: ev.Note,
	}
	problem := func(field, code, value, format string, args ...any) {
		if len(value) > maxProblemValue {
			value = value[:maxProblemValue]
		}
		inv.Problems = append(inv.Problems, &eventsv1.InvoiceProblem{
			Field: field, Code: code, Message: fmt.Sprintf(format, args...), Value: strings.ToValidUTF8(value, "?"),
		})
	}

	key, keyErr := notes.ParseAccessKey(ev.FiscalKey)
	if keyErr == nil {
		inv.AccessKey = key.Digits
	} else {
		var ke *notes.AccessKeyError
		code := "invalid"
		if errors.As(keyErr, &ke) {
			code = ke.Code()
		}
		problem("accessKey", code, ev.FiscalKey, "%s", accessKeyMessage(code, keyErr))
	}

	read := notes.ReadInvoice(ev.Note)
	inv.Number, inv.Series = read.Number, read.Series
	switch {
	case read.Number == "" && keyErr == nil:
		inv.Number = key.Number
		problem("number", "from_access_key", ev.Note,
			"O número da nota fiscal não está na observação do Hiper; foi lido da chave de acesso.")
	case read.Number == "":
		problem("number", "not_found", ev.Note, "O número da nota fiscal não foi encontrado na observação do Hiper.")
	case keyErr == nil && read.Number != key.Number:
		problem("number", "mismatch", ev.Note,
			"A observação do Hiper diz nota %s, mas a chave de acesso é da nota %s.", read.Number, key.Number)
	}
	if inv.Series == "" && keyErr == nil {
		inv.Series = key.Series
	}

	inv.DocumentType = strings.TrimSpace(ev.FiscalType)
	fromKey := ""
	if keyErr == nil {
		fromKey = notes.DocumentType(key.Model)
	}
	switch {
	case inv.DocumentType == "" && fromKey != "":
		inv.DocumentType = fromKey
	case inv.DocumentType == "":
		problem("documentType", "missing", "", "O Hiper não informou o tipo do documento fiscal.")
	case fromKey != "" && !sameDocumentType(inv.DocumentType, fromKey):
		problem("documentType", "mismatch", ev.FiscalType,
			"O Hiper diz que o documento é %s, mas a chave de acesso é de %s (modelo %s).", inv.DocumentType, fromKey, key.Model)
	}

	switch raw := strings.TrimSpace(ev.FiscalXMLURL); {
	case raw == "":
		problem("xmlUrl", "missing", "", "O Hiper não enviou o endereço do XML da nota fiscal.")
	case !webURL(raw):
		problem("xmlUrl", "invalid", raw, "O endereço do XML da nota fiscal enviado pelo Hiper não é um endereço http(s) válido.")
	default:
		inv.XmlUrl = raw
	}
	if ev.Date.IsZero() {
		problem("issuedAt", "missing", "", "O Hiper não informou a data de emissão da nota fiscal.")
	}
	return inv
}

func accessKeyMessage(code string, err error) string {
	switch code {
	case "missing":
		return "O Hiper não enviou a chave de acesso da nota fiscal."
	case "characters":
		return "A chave de acesso enviada pelo Hiper tem caracteres que não são dígitos."
	case "length":
		return fmt.Sprintf("A chave de acesso enviada pelo Hiper não tem 44 dígitos (%s).", strings.TrimPrefix(err.Error(), notes.ErrKeyLength.Error()+": "))
	}
	return "O dígito verificador da chave de acesso enviada pelo Hiper não confere: ela foi digitada ou transmitida com erro."
}

// sameDocumentType compares "NFe", "NF-e" and "nfe" as one.
func sameDocumentType(a, b string) bool {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "-", "")) }
	return norm(a) == norm(b)
}

func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

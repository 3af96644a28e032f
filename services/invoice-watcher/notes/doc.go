// Package notes reads what people write into Hiper's order events: the
// invoice number and the tracking code that Hiper only gives inside an
// event's free-text observacao, and the access key (chave de acesso) of an
// invoice, which it validates.
//
// Notes are typed by merchants and by Hiper's own templates, so the readers
// are lenient about form ("NF 1234", "Nota fiscal nº 000.123", "1234") and
// strict about meaning: when a note does not clearly say a number or a
// code, they return nothing rather than a guess. No input makes them panic
// (see the fuzz tests).
package notes

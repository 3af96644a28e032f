// Package hipersim is hiper-sim: a stateful, fast simulator of the Hiper
// "Loja virtual" API (docs/hiper-api.md) with fault injection. It is a
// product component — every test, benchmark and the one-command demo talk to
// it instead of Hiper — so it keeps to the documented behaviour, including
// Hiper's quirks (a "nothing new" product feed answered with HTTP 400, order
// failures answered with HTTP 200 and a non-empty errors list, no idempotency
// on order creation).
//
// A Sim holds one account per security key. Handler serves the API under
// /api/v1 and a control API under /_sim that tests and demos use to change
// the Hiper side (catalog, stock, order events) and to inject faults. The
// same control operations are methods of Sim for in-process use, and
// ControlClient drives them over HTTP when hiper-sim runs as its own process.
//
// Behaviour chosen where hiper-api.md is silent:
//   - An unknown or malformed security key is answered with HTTP 400, an
//     empty token and errors ["Chave de segurança inválida."]. Keys are
//     compared exactly as configured.
//   - Every valid token is known to the Sim that issued it; the signing
//     secret is per process, so tokens do not survive a restart.
//   - Any change to a product (upsert, stock, reservation by an order)
//     moves its sync point, and a change to a variation also moves its
//     parent's, because the parent lists each variation's stock.
//   - A parent with variations shows, as its own stock, the sum of its
//     variations' stock; its stock cannot be set directly, and an order
//     naming it is refused like an unknown product (an item names a
//     variation).
//   - The stock endpoint validates its cursor but always answers the
//     product's current stock and sync point.
//   - Creating an order reserves stock by decreasing each product's stock by
//     the quantity ordered (stock may go negative, as in Hiper); cancelling
//     the order, or failing its processing, gives the stock back once.
//   - An order is processed (situation 2, event 1) ProcessingDelay after it
//     was created, evaluated when read. Anything that changes an order before
//     then (an event, a cancellation) settles its processing first.
//   - Cancelling an already cancelled order answers 200 again without a
//     second event 99.
//   - A failed order (situation 3) carries its error in the observacao of
//     an event 1.
//   - quantidadeEmEstoqueReservado (in a parent's variacao) is 0 unless set
//     through the control API ("reservado" of POST …/stock): reservation by
//     orders is modelled as a stock decrease.
//   - variacaoAtiva is served as given, on any product: some accounts send
//     it, as false, on simple products and parents too.
//   - A product unlisted through the control API (DELETE …/products/{id},
//     as unticking "Enviar produto para loja virtual") is left out of the
//     feed, a full one too, until it is upserted again.
//   - Faults act before authentication, in this order: latency, rate limit,
//     error rate. Stats count every request that reached an endpoint,
//     faulted or refused ones too.
package hipersim

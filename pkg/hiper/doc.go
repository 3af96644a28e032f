// Package hiper is hipersync's one client of the Hiper "Loja virtual" API
// (docs/hiper-api.md): the token call, products and stock by sync point, and
// the create, status and cancel calls of a sales order.
//
// A [Client] is shared by every tenant and takes the token of each call as an
// argument; a [Session] binds it to one tenant's [TokenSource] and renews the
// token once when Hiper answers 401. Every failure is an [*Error] that names
// the call, the endpoint and the HTTP status and carries Hiper's own text, and
// is classed by a sentinel a caller branches on with [errors.Is]:
// [ErrTransient] and [ErrRateLimited] are worth retrying (see [IsTransient]
// and [RetryAfter]); [ErrRejected], [ErrInvalidKey], [ErrNotFound] and
// [ErrBadResponse] are not; [ErrUnauthorized] asks for a new token;
// [ErrNothingNew] is the product feed's normal end.
//
// Neither security keys nor tokens ever appear in an error, a log line or a
// trace span produced by this package.
package hiper

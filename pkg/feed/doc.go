// Package feed is what a poller does with a tenant's Hiper product feed in
// one run: follow it from the saved cursor to "nothing new", decide what each
// product's new state means for the store (a Processor: the catalog's rules
// or the stock levels), hold back a mass change (the guardrail), publish the
// events and record the products' states, and save the cursor after each
// batch so that a crash resumes where it stopped.
//
// A run is one of three kinds:
//   - the initial sync (the tenant's first pass over its catalog, exempt
//     from the guardrail) streams: each batch is decided, published and its
//     cursor saved before the next is handled, so memory stays flat however
//     large the catalog;
//   - an incremental or full poll plans first: it follows the whole feed,
//     deciding every product without publishing, and counts what the poll
//     would do; the guardrail then holds it (catalog.guard.held, cursor left
//     where it was) or it is published batch by batch as in a stream. A plan
//     that grows past MaxPlanned changes is not kept: once the guardrail
//     passed it, the feed is followed again and streamed;
//   - an approved run streams without the guardrail.
//
// Product states live in a key-value bucket per poller, in records keyed
// "<tenant>.<record>": one per product, or one per product family (States,
// Family). A product is published only when its state changed, and its state
// is written only after its events were stored, so a crash never loses a
// change: at worst it is published again under the same deterministic event
// id, which the stream's duplicate window drops.
package feed

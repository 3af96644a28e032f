package cli

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/hipersync/hipersync/pkg/catalog"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
)

const catalogUsage = `usage:
  hipersync catalog unlink <tenant> <productId|ean>
    forgets that the store has the product (seed 004's "Desvincular"): the next
    full resync, run now, publishes it anew, as created
  hipersync catalog reset <tenant>
    publishes every product anew, as created (after the store wiped its
    catalogue); above the guardrail's minimum catalogue it is held until
    ` + "`hipersync sync <tenant> --catalog --approve`"

func runCatalog(ctx context.Context, e Env, args []string) error {
	if len(args) == 0 {
		return usagef("catalog: missing subcommand\n%s", catalogUsage)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("catalog "+sub, flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the catalog-poller")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	want := map[string]int{"unlink": 2, "reset": 1}[sub]
	if want == 0 {
		return usagef("catalog: unknown subcommand %q\n%s", sub, catalogUsage)
	}
	if len(pos) != want {
		return usagef("catalog %s: want %d argument(s), got %d\n%s", sub, want, len(pos), catalogUsage)
	}
	id := pos[0]
	if err := tenant.ValidID(id); err != nil {
		return usagef("catalog %s: %v", sub, err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	s, err := connectNATS(e)
	if err != nil {
		return err
	}
	defer s.Close()
	req := ops.SyncRequest{Tenant: id, Kinds: []syncstatus.Kind{syncstatus.Catalog}, Wait: true, Reset: sub == "reset"}
	if sub == "unlink" {
		product, err := productByIDOrEAN(ctx, s, id, pos[1])
		if err != nil {
			return err
		}
		req.Unlink = []string{product}
	}
	results, err := ops.SyncNow(ctx, s.js, s.ns, req, nil)
	if err != nil {
		return err
	}
	return reportSync(e, id, results, *asJSON, *timeout)
}

// productByIDOrEAN is the Hiper product id a merchant names: an id as is, a
// barcode through the catalog's barcode index.
func productByIDOrEAN(ctx context.Context, s *streams, tenantID, ref string) (string, error) {
	if _, err := catalog.NormalizeEAN(ref); err != nil {
		return ref, nil
	}
	kv, err := s.js.KeyValue(ctx, s.ns.Bucket(catalog.IndexBucket))
	if err != nil {
		return "", fmt.Errorf("open the barcode index: %w", err)
	}
	id, err := catalog.Lookup(ctx, kv, tenantID, ref)
	if err != nil {
		return "", fmt.Errorf("no product of %s has the barcode %s: %w", tenantID, ref, err)
	}
	return id, nil
}

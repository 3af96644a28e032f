package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

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

func (a *app) catalogCmd() *cobra.Command {
	sub := func(use, short string) *cobra.Command {
		name, _, _ := strings.Cut(use, " ")
		c := &cobra.Command{Use: use, Short: short}
		timeout := c.Flags().Duration("timeout", 2*time.Minute, "how long to wait for the catalog-poller")
		c.RunE = func(_ *cobra.Command, pos []string) error {
			return runCatalog(a.ctx, a.e, name, pos, *timeout, a.asJSON)
		}
		return c
	}
	return group("catalog", "unlink a product or reset a store's catalogue, so they are published anew", catalogUsage,
		sub("unlink <tenant> <productId|ean>", "forget that the store has a product: the next full resync, run now, publishes it anew"),
		sub("reset <tenant>", "publish every product of the store anew, as created (after the store wiped its catalogue)"))
}

func runCatalog(ctx context.Context, e Env, sub string, pos []string, timeout time.Duration, asJSON bool) error {
	want := map[string]int{"unlink": 2, "reset": 1}[sub]
	if len(pos) != want {
		return usagef("catalog %s: want %d argument(s), got %d\n%s", sub, want, len(pos), catalogUsage)
	}
	id := pos[0]
	if err := tenant.ValidID(id); err != nil {
		return usagef("catalog %s: %v", sub, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
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
	return reportSync(e, id, results, asJSON, timeout)
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

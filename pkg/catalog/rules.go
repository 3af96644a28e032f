package catalog

import (
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Publishable reports whether the store gets product p at all: seed 000,
// "Produtos cadastrados sem categoria e marca no Hiper, não sincronizam na
// loja". The tenant's default category and brand count. A product that is
// not publishable is skipped by the catalog and publishes no stock either.
func Publishable(p hiper.Product, s tenant.Settings) bool {
	return p.Category != "" || p.Brand != "" || s.GetDefaultCategory() != "" || s.GetDefaultBrand() != ""
}

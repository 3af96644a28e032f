package orders

import "github.com/hipersync/hipersync/pkg/tenant"

// ErrInvalidOrderID is returned for an empty store order id.
var ErrInvalidOrderID = tenant.ErrInvalidOrderID

// Key returns the bucket key of a tenant's order, tenant.OrderKey: the one
// encoding the invoice-watcher uses too.
func Key(tenantID, orderID string) (string, error) { return tenant.OrderKey(tenantID, orderID) }

// TenantPrefix is the key filter of every order of tenant.
func TenantPrefix(tenantID string) string { return tenant.OrderKeyPrefix(tenantID) }

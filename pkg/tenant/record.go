package tenant

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
)

// Bucket is the name (before the namespace prefix) of the key-value bucket
// holding one TenantRecord per tenant, keyed by tenant id.
const Bucket = "tenants"

// DecodeRecord decodes a TenantRecord as stored in the bucket.
func DecodeRecord(b []byte) (*brokerv1.TenantRecord, error) {
	var r brokerv1.TenantRecord
	if err := proto.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode tenant record: %w", err)
	}
	if r.GetTenant() == nil {
		return nil, fmt.Errorf("decode tenant record: no tenant")
	}
	return &r, nil
}

// EncodeRecord encodes r for the bucket.
func EncodeRecord(r *brokerv1.TenantRecord) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode tenant record: %w", err)
	}
	return b, nil
}

// StateName is the state as users see it: not_connected, active, paused,
// invalid_key.
func StateName(s brokerv1.TenantState) string {
	name, ok := strings.CutPrefix(s.String(), "TENANT_STATE_")
	if !ok || s == brokerv1.TenantState_TENANT_STATE_UNSPECIFIED {
		return "unknown"
	}
	return strings.ToLower(name)
}

// Syncs reports whether hipersync works for a tenant in state s: polls run
// and orders are forwarded only for active tenants.
func Syncs(s brokerv1.TenantState) bool { return s == brokerv1.TenantState_TENANT_STATE_ACTIVE }

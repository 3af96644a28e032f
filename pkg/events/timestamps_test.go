package events

import (
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
)

// TestTimestampFields checks which fields the timestamp check looks into:
// those that can hold a Timestamp at any depth, and no others; a recursive
// type ends.
func TestTimestampFields(t *testing.T) {
	got := timestampFields((&eventsv1.StoreOrderApproved{}).ProtoReflect().Descriptor())
	if len(got) != 1 || got[0].JSONName() != "approvedAt" {
		t.Errorf("StoreOrderApproved: %v, want approvedAt alone", got)
	}
	if got := timestampFields((&structpb.Value{}).ProtoReflect().Descriptor()); len(got) != 0 {
		t.Errorf("structpb.Value (recursive, no timestamp): %v", got)
	}
	bad := &eventsv1.StoreOrderApproved{OrderId: "1", ApprovedAt: &timestamppb.Timestamp{Seconds: -1 << 40}}
	if err := checkTimestamps(bad.ProtoReflect()); err == nil {
		t.Error("a timestamp before year 1 passed")
	}
	if err := checkTimestamps((&eventsv1.StoreOrderApproved{OrderId: "1", ApprovedAt: timestamppb.Now()}).ProtoReflect()); err != nil {
		t.Errorf("a valid timestamp: %v", err)
	}
}

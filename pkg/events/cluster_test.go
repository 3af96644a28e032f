package events

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/natstest"
)

// Every replica of every service starts at the same moment against a fresh
// three-node cluster, as a fresh production install does: each one's
// provisioning succeeds, and the streams and buckets end up as configured.
func TestProvisionConcurrentlyOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node NATS cluster")
	}
	c := natstest.StartCluster(t, 3)
	ns := Namespace{Prefix: "prov", Replicas: 3}
	procs := envInt("PROCS", 10)
	var wg sync.WaitGroup
	errs := make([]error, procs)
	start := make(chan struct{})
	for i := range procs {
		_, js := c.Connect(t)
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if errs[i] = EnsureStreams(ctx, js, ns); errs[i] != nil {
				return
			}
			_, errs[i] = EnsureKV(ctx, js, ns, "tenants")
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	_, js := c.Connect(t)
	for _, s := range Streams {
		st, err := js.Stream(t.Context(), ns.Stream(s))
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("%s has %d replicas", ns.Stream(s), r)
		}
	}
	// A replicated bucket is read from its leader: a replica catching up
	// would answer with an old value.
	kvs, err := js.Stream(t.Context(), "KV_"+ns.Bucket("tenants"))
	if err != nil {
		t.Fatal(err)
	}
	if kvs.CachedInfo().Config.AllowDirect {
		t.Error("the tenants bucket answers direct gets from any replica")
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

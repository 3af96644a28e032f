package events

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/natstest"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// Every replica of every service starts at the same moment against a fresh
// three-node cluster, as a fresh production install does: each one's
// provisioning succeeds, and the streams and buckets end up as configured.
func TestProvisionConcurrentlyOnCluster(t *testing.T) {
	c, js, _ := natstest.ThreeNodes(t, time.Minute)
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
	testkit.Wait(t, &wg, 2*time.Minute, "every process's provisioning")
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	for _, s := range Streams {
		st, err := js.Stream(t.Context(), ns.Stream(s))
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("%s has %d replicas", ns.Stream(s), r)
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// A compare-and-set write made while the bucket's leader is killed with -9
// succeeds once a new leader is elected, within seconds, though the
// caller's deadline is a minute: no single request may wait it out.
func TestUpdateAcrossALeaderKill(t *testing.T) {
	t.Parallel()
	c, js, ctx := natstest.ThreeNodes(t, time.Minute)
	ns := Namespace{Prefix: "upd", Replicas: 3}
	kv, err := EnsureKV(ctx, js, ns, "records")
	if err != nil {
		t.Fatal(err)
	}
	codec := Codec[int]{
		Encode: func(n int) ([]byte, error) { return []byte(strconv.Itoa(n)), nil },
		Decode: func(b []byte) (int, error) { return strconv.Atoi(string(b)) },
	}
	inc := func(n int) (int, error) { return n + 1, nil }
	if _, _, err := Update(ctx, kv, "k", codec, inc); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		leader, err := c.StreamLeader(ctx, js, "KV_"+ns.Bucket("records"))
		if err != nil {
			t.Fatal(err)
		}
		leader.Kill()
		start := time.Now()
		n, _, err := Update(ctx, kv, "k", codec, inc)
		if err != nil {
			t.Fatalf("round %d: update across the kill: %v", round, err)
		}
		took := time.Since(start)
		t.Logf("round %d: killed %s; the update took %s", round, leader.Name, took.Round(time.Millisecond))
		if took > 30*time.Second {
			t.Errorf("round %d: the update took %s", round, took)
		}
		if n < round+2 {
			t.Errorf("round %d: the update wrote %d", round, n)
		}
		// Read from the new leader, not from a replica that may not have
		// applied the write yet.
		if got, _, _, err := Get(ctx, kv, "k", codec); err != nil || got != n {
			t.Errorf("round %d: read %d (%v) after writing %d", round, got, err, n)
		}
		leader.Restart()
		c.WaitHealthy(t, time.Minute)
	}
}

// A value written is read as written right after, by a process whose NATS
// server is a replica that has not applied the write yet: here a server
// frozen while the write is made, which answers its clients' reads as soon
// as it goes on again, maybe before it has applied what it missed. Get asks
// the stream's leader; jetstream's direct get, which the replica answers
// from its own copy, is logged for comparison (the race it may lose is
// not certain to happen: no stale direct read was seen in the runs made
// while writing this test, though TestUpdateAcrossALeaderKill met one on CI).
func TestReadAfterWriteOnAReplicaBehind(t *testing.T) {
	t.Parallel()
	c, js, ctx := natstest.ThreeNodes(t, time.Minute)
	ns := Namespace{Prefix: "behind", Replicas: 3}
	if _, err := EnsureKV(ctx, js, ns, "records"); err != nil {
		t.Fatal(err)
	}
	leader, err := c.StreamLeader(ctx, js, "KV_"+ns.Bucket("records"))
	if err != nil {
		t.Fatal(err)
	}
	replica := c.Nodes[0]
	if replica == leader {
		replica = c.Nodes[1]
	}
	// The writer is on the leader's server, the reader on the replica's.
	connect := func(nd *natstest.Node) (*nats.Conn, jetstream.JetStream) {
		nc, err := nats.Connect(nd.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		return nc, js
	}
	_, js = connect(leader)
	writer, err := EnsureKV(ctx, js, ns, "records")
	if err != nil {
		t.Fatal(err)
	}
	rnc, rjs := connect(replica)
	reader, err := EnsureKV(ctx, rjs, ns, "records")
	if err != nil {
		t.Fatal(err)
	}
	direct, err := rjs.KeyValue(ctx, ns.Bucket("records"))
	if err != nil {
		t.Fatal(err)
	}
	codec := Codec[int]{
		Encode: func(n int) ([]byte, error) { return []byte(strconv.Itoa(n)), nil },
		Decode: func(b []byte) (int, error) { return strconv.Atoi(string(b)) },
	}
	type read struct {
		n   int
		err error
	}
	stale := 0
	for round := 1; round <= 5; round++ {
		replica.Freeze()
		// Writes to other keys first, for the replica to apply before
		// this one once it goes on.
		var last jetstream.PubAckFuture
		for i := range 500 {
			if last, err = js.PublishAsync("$KV."+ns.Bucket("records")+".other"+strconv.Itoa(i%10), []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		testkit.Recv(t, last.Ok(), 10*time.Second, "the other writes")
		if _, _, err := Update(ctx, writer, "k", codec, func(int) (int, error) { return round, nil }); err != nil {
			replica.Thaw()
			t.Fatal(err)
		}
		// Both reads wait in the frozen server's socket.
		sent := rnc.Stats().OutMsgs
		got, old := make(chan read, 1), make(chan read, 1)
		go func() {
			n, _, _, err := Get(ctx, reader, "k", codec)
			got <- read{n, err}
		}()
		go func() {
			e, err := direct.Get(ctx, "k")
			if err != nil {
				old <- read{0, err}
				return
			}
			n, err := strconv.Atoi(string(e.Value()))
			old <- read{n, err}
		}()
		testkit.WaitFor(t, 10*time.Second, "both reads sent", func() bool {
			buffered, err := rnc.Buffered()
			return rnc.Stats().OutMsgs >= sent+2 && err == nil && buffered == 0
		})
		replica.Thaw()
		r := testkit.Recv(t, got, 10*time.Second, "the read")
		if r.err != nil || r.n != round {
			t.Errorf("round %d: read %d (%v) after writing %d", round, r.n, r.err, round)
		}
		if d := testkit.Recv(t, old, 10*time.Second, "the direct read"); d.err != nil || d.n != round {
			stale++
		}
	}
	t.Logf("jetstream's direct get was stale in %d of 5 rounds", stale)

	// A deletion is no value, and the last revision of the bucket.
	if err := writer.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, _, found, err := Get(ctx, reader, "k", codec); err != nil || found {
		t.Errorf("a deleted key read as found (%v)", err)
	}
	st, err := writer.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev, ok, err := LastRevision(ctx, reader, ">"); err != nil || !ok || rev != st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq {
		t.Errorf("last revision %d (%v, %v), want the deletion's, %d", rev, ok, err, st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq)
	}
}

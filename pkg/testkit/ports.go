package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Ports handed to a test must stay free until the server it starts binds
// them. A port from net.Listen("127.0.0.1:0") does not: it lies in the
// kernel's ephemeral range, where every outgoing connection of every process
// on the machine takes its local port, and where another test asking for
// port 0 may get it again once it is closed. So ports come from below that
// range, where nothing takes a port unasked, and each is claimed with a lock
// file for as long as this test binary runs, so that parallel test binaries
// never hand out the same one.

// portFloor is the lowest port handed out.
const portFloor = 10000

var ports struct {
	mu      sync.Mutex
	claimed map[int]*os.File // lock files held open until the process exits
}

// FreeAddr is a loopback host:port nothing listens on right now and that no
// other test will be given, for a server a test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePorts(t, 1)[0]))
}

// FreePorts is n distinct loopback ports, as FreeAddr.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := claimRange()
	if hi-lo < 1000 {
		return ephemeralPorts(t, n) // no room below the ephemeral range
	}
	dir := filepath.Join(os.TempDir(), "hipersync-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.claimed == nil {
		ports.claimed = map[int]*os.File{}
	}
	out := make([]int, 0, n)
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n {
			t.Fatalf("no free port in %d-%d after %d tries", lo, hi, tries)
		}
		p := lo + rand.IntN(hi-lo)
		if _, ok := ports.claimed[p]; ok {
			continue
		}
		f, ok := claim(dir, p)
		if !ok {
			continue
		}
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err != nil {
			f.Close() // someone outside the tests listens there
			continue
		} else {
			l.Close()
		}
		ports.claimed[p] = f
		out = append(out, p)
	}
	return out
}

// claim takes port p's lock file, which the kernel releases when this
// process ends, however it ends.
func claim(dir string, p int) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// claimRange is the ports below the kernel's ephemeral range.
func claimRange() (lo, hi int) {
	hi = 32768 // Linux's default ephemeral floor
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var a, z int
		if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &a, &z); err == nil {
			hi = a
		}
	}
	return portFloor, hi
}

// ephemeralPorts asks the kernel, as a last resort.
func ephemeralPorts(t testing.TB, n int) []int {
	t.Helper()
	ls := make([]net.Listener, n)
	out := make([]int, n)
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls[i], out[i] = l, l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

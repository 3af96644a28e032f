package cli

import (
	"maps"
	"strings"
	"testing"

	"github.com/hipersync/hipersync/services/console/admin"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// The console's audit log is bounded like every other stream:
// `hipersync provision` applies HIPERSYNC_AUDIT_MAX_BYTES to AUDIT, and
// `status --streams` shows it with that bound, as the 80 % alert reads it.
func TestProvisionBoundsTheAuditLog(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{})
	env := st.Env()
	maps.Copy(env, map[string]string{"HIPERSYNC_STORE_MAX_BYTES": "4MiB", "HIPERSYNC_HIPER_MAX_BYTES": "4MiB",
		"HIPERSYNC_DEADLETTER_MAX_BYTES": "1MiB", "HIPERSYNC_BUCKET_MAX_BYTES": "1MiB", "HIPERSYNC_AUDIT_MAX_BYTES": "3MiB"})
	audit := st.NS.Stream(admin.AuditStream)
	if r := runEnv(t, env, "provision"); r.code != 0 || !strings.Contains(r.stdout, audit) {
		t.Fatalf("provision: %+v; want %s among what it ensured", r, audit)
	}
	r := runEnv(t, env, "status", "--streams")
	if r.code != 0 {
		t.Fatalf("status --streams: %+v", r)
	}
	var line string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, audit+" ") {
			line = l
		}
	}
	if f := strings.Fields(line); len(f) < 7 || f[3] != "3MiB" {
		t.Fatalf("status --streams shows %s as %q; want its bound 3MiB:\n%s", audit, line, r.stdout)
	}
	// A new bound is applied at the next provision, as for the others.
	env["HIPERSYNC_AUDIT_MAX_BYTES"] = "2MiB"
	if r := runEnv(t, env, "provision", "--json"); r.code != 0 || !strings.Contains(r.stdout, audit) {
		t.Fatalf("provision with a new bound: %+v", r)
	}
	if r := runEnv(t, env, "status", "--streams", "--json"); r.code != 0 ||
		!strings.Contains(r.stdout, `"stream": "`+audit+`"`) || !strings.Contains(r.stdout, `"maxBytes": 2097152`) {
		t.Fatalf("status --streams --json after the new bound: %+v", r)
	}
}

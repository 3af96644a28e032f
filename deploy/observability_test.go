package deploy

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/services/order-forwarder/forwarder"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// ruleFile is Prometheus's rule file format, as far as the alerts use it.
type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert       string            `json:"alert,omitempty"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

// dashboard is the part of Grafana's dashboard model the checks read.
type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var (
	metricLiteral = regexp.MustCompile(`"(hipersync_[a-z0-9_]+)"`)
	metricRef     = regexp.MustCompile(`\bhipersync_[a-z0-9_]+\b`)
	// Series every Go process exports (telemetry.NewHealth), and the
	// scrape's own.
	standardMetric = regexp.MustCompile(`\b(up|go_[a-z0-9_]+|process_[a-z0-9_]+)\b`)
)

// codeLiterals returns the captures of re's first group in the non-test Go
// files of the modules.
func codeLiterals(t *testing.T, re *regexp.Regexp) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, dir := range []string{"../pkg", "../services", "../cmd"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllStringSubmatch(string(data), -1) {
				out[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// codeMetrics lists the metric names the code registers: every
// "hipersync_…" string literal of the non-test Go files of the modules.
func codeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := codeLiterals(t, metricLiteral)
	if len(names) == 0 {
		t.Fatal("found no metric names in the code")
	}
	return names
}

// unknownMetrics returns the hipersync metrics expr names that the code
// does not register; a histogram's _bucket, _sum and _count count as its
// own.
func unknownMetrics(expr string, known map[string]bool) []string {
	var unknown []string
	for _, name := range metricRef.FindAllString(expr, -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && known[b] {
				base = b
			}
		}
		if !known[base] && !slices.Contains(unknown, name) {
			unknown = append(unknown, name)
		}
	}
	return unknown
}

func TestAlertRules(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("observability/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules ruleFile
	if err := yaml.UnmarshalStrict(data, &rules); err != nil {
		t.Fatalf("alerts.yaml is not a rule file: %v", err)
	}
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	known := codeMetrics(t)
	seen := map[string]bool{}
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: want a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			name := r.Alert
			switch {
			case name == "":
				t.Errorf("group %s: a rule without an alert name (recording rules belong elsewhere)", g.Name)
				continue
			case seen[name]:
				t.Errorf("%s: defined twice", name)
			}
			seen[name] = true
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") || strings.Count(r.Expr, "[") != strings.Count(r.Expr, "]") {
				t.Errorf("%s: unbalanced brackets in %q", name, r.Expr)
			}
			if u := unknownMetrics(r.Expr, known); len(u) > 0 || !metricRef.MatchString(r.Expr) {
				t.Errorf("%s: expr names metrics the code does not register: %v", name, u)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", name, r.For, err)
				}
			}
			if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
				t.Errorf("%s: severity %q, want critical, warning or info", name, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", name, a)
				}
			}
			if !strings.HasSuffix(r.Annotations["runbook_url"], "/docs/operations.md#"+strings.ToLower(name)) {
				t.Errorf("%s: runbook_url %q does not point at its section of docs/operations.md", name, r.Annotations["runbook_url"])
			}
			if !regexp.MustCompile(`(?m)^#+ ` + name + `$`).Match(ops) {
				t.Errorf("%s: docs/operations.md has no section \"### %s\" saying what it means and what to do", name, name)
			}
		}
	}
	promtool(t, "check", "rules", "observability/alerts.yaml")
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("observability/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard title %q, uid %q: want both", d.Title, d.UID)
	}
	known := codeMetrics(t)
	ids := map[int]bool{}
	var exprs []string
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", p.Title)
		}
		for _, q := range p.Targets {
			if u := unknownMetrics(q.Expr, known); len(u) > 0 || !metricRef.MatchString(q.Expr) && !standardMetric.MatchString(q.Expr) {
				t.Errorf("panel %q, query %s: names metrics the code does not register: %v", p.Title, q.RefID, u)
			}
			exprs = append(exprs, q.Expr)
		}
	}

	// promtool checks the queries' syntax as recording rules, Grafana's
	// variables replaced by values.
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	r := strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*")
	for i, e := range exprs {
		q, _ := json.Marshal(r.Replace(e))
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, q)
	}
	file := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	promtool(t, "check", "rules", file)
}

// promtool runs `promtool <args>` (check rules, test rules) when promtool
// is installed (Debian: apt-get install prometheus; .ci/run does); without
// it the checks in Go are all there is.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Logf("promtool not installed: promtool %s not run", strings.Join(args, " "))
		return
	}
	if out, err := exec.Command(path, args...).CombinedOutput(); err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// sharedGauges are the gauges every replica reports alike, since they read
// shared state (a durable consumer, the work queue, every tenant's sync, a
// stream's size): summed over replicas they multiply by the replica count,
// so a query aggregates them with max (or min) first.
var sharedGauges = []string{
	"hipersync_consumer_pending_messages", "hipersync_consumer_ack_pending_messages",
	"hipersync_consumer_redelivered_messages", "hipersync_sync_lag_seconds",
	"hipersync_sync_target_interval_seconds", "hipersync_sync_held", "hipersync_invoice_watch_orders_open",
	"hipersync_stream_bytes", "hipersync_stream_max_bytes", "hipersync_stream_messages",
}

var (
	// aggregation is a PromQL aggregation operator's name.
	aggregation = regexp.MustCompile(`\b(sum|avg|count|max|min|topk|bottomk|quantile|stddev|stdvar|group|count_values)\s*$`)
	// grouping is a "by (…)" or "without (…)" clause before an
	// aggregation's argument.
	grouping = regexp.MustCompile(`\b(by|without)\s*\([^()]*\)\s*$`)
)

// innermostAggregation returns the aggregation operator closest around
// position i of expr, "" when none is.
func innermostAggregation(expr string, i int) string {
	depth := 0
	for j := i - 1; j >= 0; j-- {
		switch expr[j] {
		case ')':
			depth++
		case '(':
			if depth > 0 {
				depth--
				continue
			}
			before := strings.TrimRight(expr[:j], " \n\t")
			// "sum by (x) (…)": skip the clause to reach the operator.
			if loc := grouping.FindStringIndex(before); loc != nil {
				before = strings.TrimRight(before[:loc[0]], " \n\t")
			}
			if m := aggregation.FindStringSubmatch(before); m != nil {
				return m[1]
			}
			// A function (rate, deriv, absent…) or plain brackets: look
			// further out.
		}
	}
	return ""
}

// summedSharedGauges returns the shared gauges expr adds up over replicas.
func summedSharedGauges(expr string) []string {
	var out []string
	for _, g := range sharedGauges {
		for _, loc := range regexp.MustCompile(`\b`+g+`\b`).FindAllStringIndex(expr, -1) {
			if op := innermostAggregation(expr, loc[0]); op == "sum" || op == "avg" || op == "count" {
				out = append(out, g+" under "+op)
			}
		}
	}
	return out
}

func TestSharedGaugesAreNeverSummed(t *testing.T) {
	t.Parallel()
	known := codeMetrics(t)
	for _, g := range sharedGauges {
		if !known[g] {
			t.Errorf("%s: no longer registered by the code; update sharedGauges", g)
		}
	}
	// The check itself can fail.
	for expr, want := range map[string]bool{
		`sum(hipersync_invoice_watch_orders_open)`:                                         true,
		`sum by (kind) (hipersync_sync_held)`:                                              true,
		`sum by (kind) (max by (kind, tenant) (hipersync_sync_held))`:                      false,
		`max by (consumer) (deriv(hipersync_consumer_pending_messages[15m])) > 0`:          false,
		`absent(hipersync_consumer_pending_messages{consumer="order-forwarder"})`:          false,
		`topk(10, max by (kind, tenant) (hipersync_sync_lag_seconds))`:                     false,
		`avg(rate(hipersync_orders_total[5m])) + sum(hipersync_consumer_pending_messages)`: true,
	} {
		if got := len(summedSharedGauges(expr)) > 0; got != want {
			t.Errorf("summedSharedGauges(%q) = %v, want %v", expr, got, want)
		}
	}
	var rules ruleFile
	data, err := os.ReadFile("observability/alerts.yaml")
	if err == nil {
		err = yaml.Unmarshal(data, &rules)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if s := summedSharedGauges(r.Expr); len(s) > 0 {
				t.Errorf("alert %s sums a gauge every replica reports alike: %v", r.Alert, s)
			}
		}
	}
	var d dashboard
	if data, err = os.ReadFile("observability/dashboard.json"); err == nil {
		err = json.Unmarshal(data, &d)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			if s := summedSharedGauges(q.Expr); len(s) > 0 {
				t.Errorf("panel %q, query %s sums a gauge every replica reports alike: %v", p.Title, q.RefID, s)
			}
		}
	}
}

// The alerts the operator relies on read what the code counts, under the
// names and label values the code uses, and their runbooks say whose
// failure each is.
func TestAlertsReadWhatTheCodeCounts(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("observability/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules ruleFile
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr
		}
	}
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	section := func(alert string) string {
		s := string(ops)
		i := strings.Index(s, "### "+alert+"\n")
		if i < 0 {
			return ""
		}
		s = s[i+len(alert)+5:]
		if j := strings.Index(s, "\n#"); j >= 0 {
			s = s[:j]
		}
		return strings.Join(strings.Fields(s), " ")
	}
	for _, c := range []struct {
		alert      string
		exprHas    []string
		runbookHas []string
	}{
		// The backlog series vanishes with the pods: only its absence says
		// that every replica is down.
		{"HipersyncOrderForwarderDown",
			[]string{`absent(hipersync_consumer_pending_messages{consumer="` + forwarder.ConsumerName + `"})`},
			[]string{"no replica runs"}},
		// The forwarder's failed: the order never reached Hiper.
		{"HipersyncOrdersFailing",
			[]string{`state=~"` + string(orders.StateFailed) + `|` + string(orders.StateNeedsReview) + `"`, `state="` + string(orders.StateReceived) + `"`},
			[]string{"hipersync's side", "before the order reached Hiper"}},
		// The watcher's order.failed: Hiper processed it with an error.
		{"HipersyncOrderFailedInHiper",
			[]string{`hipersync_invoice_watch_events_total{kind="` + string(events.KindOrderFailed) + `"}`},
			[]string{"processed it with an error", "not hipersync's failure"}},
		// Dead letters of the consumer loop and of the invoice-watcher.
		{"HipersyncDeadLetters",
			[]string{`hipersync_events_consumed_total{outcome="dead_letter"}`, "hipersync_invoice_watch_dead_letters_total"},
			[]string{"invoice-watcher", "hiper_bad_answer"}},
	} {
		expr, ok := exprs[c.alert]
		if !ok {
			t.Errorf("no alert %s", c.alert)
			continue
		}
		for _, want := range c.exprHas {
			if !strings.Contains(expr, want) {
				t.Errorf("%s: expr %q does not read %s", c.alert, expr, want)
			}
		}
		rb := section(c.alert)
		for _, want := range c.runbookHas {
			if !strings.Contains(rb, want) {
				t.Errorf("%s: its runbook does not say %q", c.alert, want)
			}
		}
	}
	// The unit tests of the rules: series as the code names them, and the
	// alerts they must (and must not) raise.
	unit, err := os.ReadFile("observability/alerts.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	known := codeMetrics(t)
	for _, m := range regexp.MustCompile(`series: '([a-z0-9_]+)`).FindAllStringSubmatch(string(unit), -1) {
		if u := unknownMetrics(m[1], known); len(u) > 0 {
			t.Errorf("alerts.test.yaml: series %s is not a metric the code registers", m[1])
		}
	}
	promtool(t, "test", "rules", "observability/alerts.test.yaml")
}

// matcher is a label matcher of a PromQL selector: name, operator, value.
var matcher = regexp.MustCompile(`([a-z_]+)\s*(=~|!=|=)\s*"([^"]*)"`)

// Every label value an alert matches is one the code can give: a rule
// matching outcome="dead_lettered" where the code counts "dead_letter"
// would never fire.
func TestAlertLabelValuesExistInTheCode(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("observability/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules ruleFile
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	// Every string literal of the code.
	known := codeLiterals(t, regexp.MustCompile(`"((?:[^"\\\n]|\\.)*)"`))
	plain := regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	statusClass := regexp.MustCompile(`^[1-5]xx$`)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, m := range matcher.FindAllStringSubmatch(r.Expr, -1) {
				label, op, value := m[1], m[2], m[3]
				if op == "!=" || label == "le" || value == "" {
					continue
				}
				for _, v := range strings.Split(value, "|") {
					if !plain.MatchString(v) {
						continue // a pattern, not a value
					}
					// pkg/hiper builds status classes from the status:
					// strconv.Itoa(status/100) + "xx".
					if statusClass.MatchString(v) && known["xx"] {
						continue
					}
					if !known[v] {
						t.Errorf("%s: matches %s=%q, a value the code never gives", r.Alert, label, v)
					}
				}
			}
		}
	}
}

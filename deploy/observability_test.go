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

// codeMetrics lists the metric names the code registers: every
// "hipersync_…" string literal of the non-test Go files of the modules.
func codeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, dir := range []string{"../pkg", "../services", "../cmd"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range metricLiteral.FindAllStringSubmatch(string(data), -1) {
				names[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
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
	promtool(t, "observability/alerts.yaml")
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
	promtool(t, file)
}

// promtool checks a rule file with Prometheus's own parser when promtool is
// installed (Debian: apt-get install prometheus); without it the checks
// above are all there is.
func promtool(t *testing.T, file string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Logf("promtool not installed: PromQL syntax of %s not checked", file)
		return
	}
	if out, err := exec.Command(path, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules %s: %v\n%s", file, err, out)
	}
}

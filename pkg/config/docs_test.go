package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = "../.."

// envName is the shape of an environment variable's name.
var envName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

// readers are the functions and methods whose first argument names the
// variable they read: the Loader's, and getenv in its spellings.
var readers = map[string]bool{
	"String": true, "Required": true, "Int": true, "Float": true, "Bool": true, "Duration": true,
	"URL": true, "Addr": true, "Key32": true, "Key32List": true, "OneOf": true, "File": true, "Bytes": true,
	"Getenv": true, "getenv": true, "LookupEnv": true, "lookup": true,
}

// The variables the code reads and the ones the configuration tables of
// README.md and docs/ list are the same: nothing a binary reads is
// undocumented, and nothing documented is ignored.
func TestConfigurationTablesMatchTheCode(t *testing.T) {
	t.Parallel()
	read := variablesRead(t)
	documented := variablesDocumented(t)
	if len(read) < 20 || len(documented) < 20 {
		t.Fatalf("found %d variables read and %d documented: the scan is broken", len(read), len(documented))
	}
	for name, where := range read {
		if _, ok := documented[name]; !ok && !strings.HasPrefix(name, "OTEL_") {
			t.Errorf("%s is read (%s) but no configuration table in README.md or docs/ lists it", name, where)
		}
	}
	for name, where := range documented {
		if _, ok := read[name]; !ok && name != "OTEL_*" {
			t.Errorf("%s is documented (%s) but no code reads it", name, where)
		}
	}
	if _, ok := documented["OTEL_*"]; !ok {
		t.Error("README's configuration table lost its OTEL_* row")
	}
}

// variablesRead returns the variables the Go code outside tests reads, each
// with a file that reads it.
func variablesRead(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	var files []*ast.File
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != repoRoot && (strings.HasPrefix(name, ".") || name == "gen" || name == "node_modules" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Constants naming a variable (events.FormatEnv, hipersim.EnvKeys…),
	// by their name: a call may pass one instead of a literal.
	consts := map[string]string{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if v, ok := stringLit(vs.Values[i]); ok && envName.MatchString(v) {
						consts[name.Name] = v
					}
				}
			}
			return true
		})
	}
	read := map[string]string{}
	for _, f := range files {
		where, _ := filepath.Rel(repoRoot, fset.Position(f.Pos()).Filename)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			var fn string
			switch e := call.Fun.(type) {
			case *ast.Ident:
				fn = e.Name
			case *ast.SelectorExpr:
				fn = e.Sel.Name
			}
			if !readers[fn] {
				return true
			}
			name, ok := stringLit(call.Args[0])
			if !ok {
				switch a := call.Args[0].(type) {
				case *ast.Ident:
					name = consts[a.Name]
				case *ast.SelectorExpr:
					name = consts[a.Sel.Name]
				}
			}
			if envName.MatchString(name) {
				read[name] = where
			}
			return true
		})
	}
	return read
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// tableVariable is a variable named in the first cell of a table row.
var tableVariable = regexp.MustCompile("`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|OTEL_\\*)`")

// variablesDocumented returns the variables the configuration tables of
// README.md and docs/*.md list (a row whose first cell names them), each
// with the page that lists it.
func variablesDocumented(t *testing.T) map[string]string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join(repoRoot, "README.md"))
	slices.Sort(pages)
	out := map[string]string{}
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(repoRoot, page)
		for _, line := range strings.Split(string(b), "\n") {
			cells := strings.Split(line, "|")
			if !strings.HasPrefix(line, "| `") || len(cells) < 4 {
				continue
			}
			first := strings.TrimSpace(cells[1])
			// Only a cell of variables: "`A`", "`A`, `B`".
			if strings.TrimSpace(tableVariable.ReplaceAllString(strings.ReplaceAll(first, ",", ""), "")) != "" {
				continue
			}
			for _, m := range tableVariable.FindAllStringSubmatch(first, -1) {
				out[m[1]] = name
			}
		}
	}
	return out
}

// markdownLink is a link of a Markdown page: its target, without the
// images and the bare URLs.
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// Every relative link of README.md and docs/*.md leads somewhere: to a file
// of the repository and, with a #fragment, to a heading of that page.
func TestDocsLinksResolve(t *testing.T) {
	t.Parallel()
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join(repoRoot, "README.md"))
	anchors := map[string]map[string]bool{}
	anchorsOf := func(page string) map[string]bool {
		if a, ok := anchors[page]; ok {
			return a
		}
		b, err := os.ReadFile(page)
		if err != nil {
			return nil
		}
		a := map[string]bool{}
		inCode := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "```") {
				inCode = !inCode
			}
			if inCode || !strings.HasPrefix(line, "#") {
				continue
			}
			slug := headingSlug(strings.TrimLeft(line, "#"))
			for n := 0; ; n++ {
				s := slug
				if n > 0 {
					s += "-" + strconv.Itoa(n)
				}
				if !a[s] {
					a[s] = true
					break
				}
			}
		}
		anchors[page] = a
		return a
	}
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(repoRoot, page)
		for _, m := range markdownLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			dest := page
			if file != "" {
				dest = filepath.Join(filepath.Dir(page), file)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %s: no file %s", name, target, file)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(dest, ".md") && !anchorsOf(dest)[frag] {
				t.Errorf("%s: link %s: no heading #%s there", name, target, frag)
			}
		}
	}
}

// headingSlug is the anchor GitHub gives a heading: lower case, punctuation
// dropped, spaces as hyphens.
func headingSlug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

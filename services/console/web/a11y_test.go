package web_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hipersync/hipersync/services/console/auth"
	"github.com/hipersync/hipersync/services/console/consoletest"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

var (
	controlRe = regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idRe      = regexp.MustCompile(`\bid="([^"]+)"`)
	labelRe   = regexp.MustCompile(`<label\b[^>]*\bfor="([^"]+)"`)
	buttonRe  = regexp.MustCompile(`(?s)<button\b([^>]*)>(.*?)</button>`)
	thRe      = regexp.MustCompile(`<th\b`)
	tagRe     = regexp.MustCompile(`<[^>]+>`)
)

// Every page a screen reader or a keyboard reaches: a skip link to the main
// content, every form control named by a label (or aria-label), every
// button with a name, every table's headers scoped.
func TestPagesAreLabelledForScreenReadersAndKeyboards(t *testing.T) {
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{"acme"}})
	c := consoletest.Start(t, st, auth.Config{})
	for who, key := range map[string]string{"operator": c.OperatorKey, "store": c.StoreKeys["acme"]} {
		b := login(t, c, key)
		for _, path := range []string{"/", "/stores/acme", "/log", "/dead-letters", "/audit"} {
			code, page := b.get(path)
			if code != 200 {
				t.Errorf("%s GET %s: %d", who, path, code)
				continue
			}
			if !strings.Contains(page, `href="#main"`) || !strings.Contains(page, `id="main"`) {
				t.Errorf("%s %s: no skip link to the main content", who, path)
			}
			labels := map[string]bool{}
			for _, m := range labelRe.FindAllStringSubmatch(page, -1) {
				labels[m[1]] = true
			}
			for _, ctl := range controlRe.FindAllString(page, -1) {
				if strings.Contains(ctl, `type="hidden"`) || strings.Contains(ctl, "aria-label=") {
					continue
				}
				id := idRe.FindStringSubmatch(ctl)
				if id == nil || !labels[id[1]] {
					t.Errorf("%s %s: a control without a label: %s", who, path, ctl)
				}
			}
			for _, m := range buttonRe.FindAllStringSubmatch(page, -1) {
				if strings.TrimSpace(tagRe.ReplaceAllString(m[2], "")) == "" && !strings.Contains(m[1], "aria-label=") {
					t.Errorf("%s %s: a button without a name: %s", who, path, m[0])
				}
			}
			if len(thRe.FindAllString(page, -1)) != strings.Count(page, `<th scope=`) {
				t.Errorf("%s %s: a table header without a scope", who, path)
			}
		}
	}
}

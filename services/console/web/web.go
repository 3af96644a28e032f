// Package web is the console: server-rendered pages (html/template, no
// build step) in Portuguese with an English switch, over the admin API's
// Server, so that the console and the API share every rule, every role
// check and the audit log.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/hipersync/hipersync/services/console/admin"
	"github.com/hipersync/hipersync/services/console/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

const (
	sessionCookie = "hs_session"
	langCookie    = "hs_lang"
)

// Deps is what the console works with.
type Deps struct {
	Admin *admin.Server
	Auth  *auth.Authenticator
	Log   *slog.Logger
}

// Web serves the console.
type Web struct {
	d     Deps
	pages map[string]*template.Template
	now   func() time.Time

	mu       sync.Mutex
	overview overviewCache
}

// New parses the templates.
func New(d Deps) (*Web, error) {
	w := &Web{d: d, pages: map[string]*template.Template{}, now: time.Now}
	for _, name := range []string{"login", "stores", "store", "order", "log", "dlq", "audit"} {
		t, err := template.New(name).Funcs(funcs(pt)).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		w.pages[name] = t
	}
	return w, nil
}

// Handler routes the console's pages.
func (w *Web) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", w.loginPage)
	mux.HandleFunc("POST /login", w.login)
	mux.HandleFunc("GET /login/link", w.loginLink)
	mux.HandleFunc("GET /lang", w.setLang)
	mux.HandleFunc("POST /logout", w.logout)
	mux.HandleFunc("GET /{$}", w.page(w.stores))
	mux.HandleFunc("GET /stores/{tenant}", w.page(w.store))
	mux.HandleFunc("POST /stores/{tenant}/{action}", w.action(w.storeAction))
	mux.HandleFunc("GET /stores/{tenant}/orders/{order}", w.page(w.order))
	mux.HandleFunc("POST /stores/{tenant}/orders/{order}/resolve", w.action(w.resolve))
	mux.HandleFunc("GET /log", w.page(w.syncLog))
	mux.HandleFunc("GET /log/stream", w.session(w.logStream))
	mux.HandleFunc("GET /dead-letters", w.page(w.deadLetters))
	mux.HandleFunc("POST /dead-letters/{id}/retry", w.action(w.retry))
	mux.HandleFunc("GET /audit", w.page(w.audit))
	return securityHeaders(mux)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hd := rw.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(rw, r)
	})
}

// view is what every page template gets.
type view struct {
	Title     string
	Lang      string
	OtherLang string
	Path      string
	Nav       string
	P         auth.Principal
	Operator  bool
	CSRF      string
	OK        string
	Err       string
	// ErrCode and ErrDetail are an admin error's code and, beside its
	// Portuguese text, its English message.
	ErrCode   string
	ErrDetail string
	D         any
}

// req is one request of a signed-in user.
type req struct {
	r       *http.Request
	ctx     context.Context
	p       auth.Principal
	lang    lang
	session string
}

func (q *req) t(key string) string { return q.lang.text(key) }

func langOf(r *http.Request) lang {
	if c, err := r.Cookie(langCookie); err == nil && c.Value == "en" {
		return en
	}
	return pt
}

// principal reads the session cookie; in insecure mode a visitor without
// one gets an operator session.
func (w *Web) principal(rw http.ResponseWriter, r *http.Request) (*req, bool) {
	q := &req{r: r, lang: langOf(r)}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if p, err := w.d.Auth.Session(c.Value); err == nil {
			q.p, q.session = p, c.Value
		}
	}
	if q.session == "" && w.d.Auth.Insecure() {
		p, _ := w.d.Auth.Bearer(r.Context(), "")
		q.p, q.session = p, w.setSession(rw, p)
	}
	if q.session == "" {
		return nil, false
	}
	q.ctx = auth.With(r.Context(), q.p)
	return q, true
}

func (w *Web) setSession(rw http.ResponseWriter, p auth.Principal) string {
	v := w.d.Auth.NewSession(p)
	http.SetCookie(rw, &http.Cookie{Name: sessionCookie, Value: v, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return v
}

// session wraps a handler that needs a signed-in user.
func (w *Web) session(h func(rw http.ResponseWriter, q *req)) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		q, ok := w.principal(rw, r)
		if !ok {
			http.Redirect(rw, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(rw, q)
	}
}

// page wraps a page handler: it returns the template, the page's data and
// its title, or an error shown on the page.
func (w *Web) page(h func(q *req) (tmpl, nav, title string, data any, err error)) http.HandlerFunc {
	return w.session(func(rw http.ResponseWriter, q *req) {
		tmpl, nav, title, data, err := h(q)
		v := w.view(q, nav, title, data)
		status := http.StatusOK
		if err != nil {
			e := errorOf(err, q.lang)
			v.Err, v.ErrCode, v.ErrDetail = fmt.Sprintf(q.t("error"), e.Text), e.Code, e.Detail
			status = httpStatus(err)
			if data == nil {
				tmpl = "audit"
			}
		}
		w.render(rw, status, tmpl, v, q.lang)
	})
}

func (w *Web) view(q *req, nav, title string, data any) view {
	v := view{Title: title, Lang: q.lang.tag(), OtherLang: "en", Path: q.r.URL.RequestURI(), Nav: nav, P: q.p,
		Operator: q.p.Operator(), CSRF: w.d.Auth.CSRF(q.session), D: data}
	if q.lang == en {
		v.OtherLang = "pt"
	}
	if ok := q.r.URL.Query().Get("ok"); ok != "" {
		v.OK = ok
	}
	if e := q.r.URL.Query().Get("err"); e != "" {
		v.Err = fmt.Sprintf(q.t("error"), e)
		v.ErrCode, v.ErrDetail = q.r.URL.Query().Get("code"), q.r.URL.Query().Get("detail")
	}
	return v
}

func (w *Web) render(rw http.ResponseWriter, status int, tmpl string, v view, l lang) {
	t, err := w.pages[tmpl].Clone()
	if err == nil {
		t.Funcs(funcs(l))
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.WriteHeader(status)
		err = t.ExecuteTemplate(rw, "layout", v)
	}
	if err != nil {
		w.d.Log.Error("render page", "template", tmpl, "err", err)
	}
}

// action wraps a form post: it checks the form's CSRF token, runs h and
// redirects to where h says, with its message or error.
func (w *Web) action(h func(q *req) (back, ok string, err error)) http.HandlerFunc {
	return w.session(func(rw http.ResponseWriter, q *req) {
		if err := q.r.ParseForm(); err != nil || q.r.PostForm.Get("csrf") != w.d.Auth.CSRF(q.session) {
			http.Error(rw, "bad or missing form token; reload the page", http.StatusForbidden)
			return
		}
		back, ok, err := h(q)
		u, _ := url.Parse(back)
		vals := url.Values{}
		if err != nil {
			e := errorOf(err, q.lang)
			vals.Set("err", e.Text)
			if e.Code != "" {
				vals.Set("code", e.Code)
			}
			if e.Detail != "" {
				vals.Set("detail", e.Detail)
			}
		} else if ok != "" {
			vals.Set("ok", ok)
		}
		u.RawQuery = vals.Encode()
		http.Redirect(rw, q.r, u.String(), http.StatusSeeOther)
	})
}

// shownError is an error as a page shows it: for an admin API error in
// Portuguese, its refusal's text and code, with the English message as the
// detail; in English, the message and the code.
type shownError struct{ Text, Code, Detail string }

func errorOf(err error, l lang) shownError {
	msg := err.Error()
	var ce *connect.Error
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	r, ok := admin.RefusalOf(err)
	return shown(msg, r, ok, l)
}

// shown is an English message with its refusal (if ok) as a page shows it.
func shown(msg string, r admin.Refusal, ok bool, l lang) shownError {
	switch {
	case !ok:
		return shownError{Text: msg}
	case l == pt && r.Text != "":
		return shownError{Text: r.Text, Code: r.Code, Detail: msg}
	}
	return shownError{Text: msg, Code: r.Code}
}

// String is the error on one line, for a plain-text answer.
func (e shownError) String() string {
	s := e.Text
	if e.Code != "" {
		s += " [" + e.Code + "]"
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

func httpStatus(err error) int {
	switch admin.Code(err) {
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition:
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func (w *Web) loginPage(rw http.ResponseWriter, r *http.Request) {
	l := langOf(r)
	v := view{Title: l.text("login.title"), Lang: l.tag(), OtherLang: "en", Path: r.URL.RequestURI()}
	if l == en {
		v.OtherLang = "pt"
	}
	if r.URL.Query().Get("failed") != "" {
		v.Err = l.text("login.failed")
	}
	w.render(rw, http.StatusOK, "login", v, l)
}

func (w *Web) login(rw http.ResponseWriter, r *http.Request) {
	p, err := w.d.Auth.Credential(r.Context(), strings.TrimSpace(r.PostFormValue("key")))
	if err != nil {
		http.Redirect(rw, r, "/login?failed=1", http.StatusSeeOther)
		return
	}
	w.setSession(rw, p)
	http.Redirect(rw, r, home(p), http.StatusSeeOther)
}

func home(p auth.Principal) string {
	if p.Operator() {
		return "/"
	}
	return "/stores/" + url.PathEscape(p.Tenant)
}

func (w *Web) loginLink(rw http.ResponseWriter, r *http.Request) {
	p, err := w.d.Auth.UseLoginLink(r.URL.Query().Get("token"))
	if err != nil {
		http.Redirect(rw, r, "/login?failed=1", http.StatusSeeOther)
		return
	}
	w.setSession(rw, p)
	http.Redirect(rw, r, home(p), http.StatusSeeOther)
}

func (w *Web) logout(rw http.ResponseWriter, r *http.Request) {
	http.SetCookie(rw, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	http.Redirect(rw, r, "/login", http.StatusSeeOther)
}

func (w *Web) setLang(rw http.ResponseWriter, r *http.Request) {
	to := "pt"
	if r.URL.Query().Get("to") == "en" {
		to = "en"
	}
	http.SetCookie(rw, &http.Cookie{Name: langCookie, Value: to, Path: "/", MaxAge: 365 * 24 * 3600, SameSite: http.SameSiteLaxMode})
	back := r.URL.Query().Get("back")
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") {
		back = "/"
	}
	http.Redirect(rw, r, back, http.StatusSeeOther)
}

func funcs(l lang) template.FuncMap {
	return template.FuncMap{
		"t":    l.text,
		"tf":   func(key string, args ...any) string { return fmt.Sprintf(l.text(key), args...) },
		"when": when,
	}
}

// timestamp is what the generated timestamps have.
type timestamp interface{ AsTime() time.Time }

func when(ts timestamp) string {
	if ts == nil {
		return "—"
	}
	t := ts.AsTime()
	if t.IsZero() || t.Unix() <= 0 {
		return "—"
	}
	return t.Local().Format("02/01/2006 15:04:05")
}

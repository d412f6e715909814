package ui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the status page.
type Options struct {
	// Source is where the page reads from.
	Source Source
	// APIKey opens the page; empty: the page is closed (403).
	APIKey string
	// Prefix is the path the page is mounted at (default "/ui/").
	Prefix string
	// SessionLifetime bounds a login (default DefaultSessionLifetime).
	SessionLifetime time.Duration
	// Refresh is how often the page's script refreshes the live part
	// (default 2s).
	Refresh time.Duration
	Logger  hclog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Handler serves the status page.
type Handler struct {
	opts     Options
	log      hclog.Logger
	prefix   string
	key      [sha256.Size]byte
	sessions *sessions
	mux      *http.ServeMux
	pages    map[string]*template.Template
}

// PageSize is how many rows a listing shows.
const PageSize = 100

// csp allows the page's own script, styles and requests only: no inline
// script or style, no frames, forms posting to the page alone.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New returns the status page handler; mount it at opts.Prefix.
func New(opts Options) *Handler {
	if opts.Prefix == "" {
		opts.Prefix = "/ui/"
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.SessionLifetime <= 0 {
		opts.SessionLifetime = DefaultSessionLifetime
	}
	if opts.Refresh <= 0 {
		opts.Refresh = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	h := &Handler{opts: opts, log: opts.Logger, prefix: opts.Prefix, key: sha256.Sum256([]byte(opts.APIKey)),
		sessions: newSessions(opts.Now, opts.SessionLifetime), mux: http.NewServeMux(), pages: parsePages()}
	p := opts.Prefix
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET "+p+"static/", http.StripPrefix(p+"static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET "+p+"login", h.loginForm)
	h.mux.HandleFunc("POST "+p+"login", h.guardPost(h.login))
	h.mux.HandleFunc("POST "+p+"logout", h.requireSession(h.guardPost(h.logout)))
	h.mux.HandleFunc("GET "+p+"{$}", h.requireSession(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p+"executions", http.StatusSeeOther)
	}))
	h.mux.HandleFunc("GET "+p+"executions", h.requireSession(h.executions))
	h.mux.HandleFunc("GET "+p+"dead-letters", h.requireSession(h.deadLetters))
	h.mux.HandleFunc("POST "+p+"dead-letters/{id}/replay", h.requireSession(h.guardPost(h.replay)))
	h.mux.HandleFunc("GET "+p+"runners", h.requireSession(h.runners))
	h.mux.HandleFunc("GET "+p+"routes", h.requireSession(h.routes))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	if h.opts.APIKey == "" {
		http.Error(w, "the status page needs an API key: set POSTEE_API_KEY (or --api-key)", http.StatusForbidden)
		return
	}
	h.mux.ServeHTTP(w, r)
}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"ts": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"dur": func(d time.Duration) string {
			if d < time.Millisecond {
				return d.String()
			}
			return d.Round(time.Millisecond).String()
		},
		"join": strings.Join,
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"login", "executions", "dead-letters", "runners", "routes"} {
		pages[name] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return pages
}

// page is what every template gets.
type page struct {
	Prefix  string
	Title   string
	Nav     string
	CSRF    string
	LiveURL string
	Refresh int // milliseconds
	Error   string
	Notice  string
	Data    any
}

func isFragment(r *http.Request) bool { return r.URL.Query().Get("fragment") == "1" }

// render writes a page, or only its live part for the script's refreshes.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	p.Prefix, p.Nav, p.Refresh = h.prefix, name, int(h.opts.Refresh/time.Millisecond)
	if ss := sessionOf(r); ss != nil {
		p.CSRF = ss.csrf
	}
	if p.LiveURL == "" && name != "login" {
		q := r.URL.Query()
		q.Set("fragment", "1")
		p.LiveURL = h.prefix + name + "?" + q.Encode()
	}
	tmpl := "layout"
	if isFragment(r) {
		tmpl = "live"
	}
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, tmpl, p); err != nil {
		h.log.Error("status page: rendering failed", "page", name, "error", err)
		http.Error(w, "rendering failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "login", page{Title: "Log in"})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !keyEqual(r.PostFormValue("key"), h.key) {
		h.log.Warn("status page: login with a wrong API key", "remote", r.RemoteAddr)
		h.render(w, r, http.StatusUnauthorized, "login", page{Title: "Log in", Error: "Wrong API key."})
		return
	}
	token, _ := h.sessions.create()
	h.setCookie(w, r, token, int(h.opts.SessionLifetime/time.Second))
	h.log.Info("status page: logged in", "remote", r.RemoteAddr)
	http.Redirect(w, r, h.prefix+"executions", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		h.sessions.delete(c.Value)
	}
	h.setCookie(w, r, "", -1)
	http.Redirect(w, r, h.prefix+"login", http.StatusSeeOther)
}

// choices are the values offered by the execution filters.
type choices struct {
	Routes, Actions, Runners []string
}

type executionsData struct {
	Filter     Filter
	Executions []Execution
	Choices    choices
	Outcomes   []string
}

func (h *Handler) executions(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	q := r.URL.Query()
	f := Filter{Route: q.Get("route"), Action: q.Get("action"), Runner: q.Get("runner"),
		Outcome: q.Get("outcome"), Event: q.Get("event"), Limit: PageSize}
	d := executionsData{Filter: f, Outcomes: []string{OutcomeOK, OutcomeFailed, OutcomeDispatched}}
	p := page{Title: "Executions", Data: &d}
	xs, err := h.opts.Source.Executions(ctx, f)
	if err != nil {
		p.Error = "executions: " + err.Error()
	}
	d.Executions = xs
	if !isFragment(r) {
		d.Choices = h.choices(ctx)
	}
	h.render(w, r, http.StatusOK, "executions", p)
}

func (h *Handler) choices(ctx context.Context) choices {
	var c choices
	seen := map[string]bool{}
	add := func(list *[]string, kind, v string) {
		if v != "" && !seen[kind+v] {
			seen[kind+v] = true
			*list = append(*list, v)
		}
	}
	routes, _ := h.opts.Source.Routes(ctx)
	for _, rt := range routes {
		add(&c.Routes, "r", rt.Name)
		for _, a := range rt.Actions {
			add(&c.Actions, "a", a.Name)
		}
	}
	runners, _ := h.opts.Source.Runners(ctx)
	for _, rn := range runners {
		add(&c.Runners, "n", rn.Name)
	}
	sort.Strings(c.Actions)
	return c
}

type deadLettersData struct {
	Page           DeadLetterPage
	Offset         int
	Prev, Next     int
	HasPrev        bool
	HasNext        bool
	First, Last    int
	ReplayedID     string
	ReplayedResult string
}

// replay results shown after the redirect (fixed texts; the id is shown
// escaped).
var replayResults = map[string]string{
	"ok":      "replayed: the action succeeded and the dead letter is gone",
	"failed":  "replayed: the action failed again; the dead letter shows the new error",
	"missing": "no such dead letter (already replayed?)",
	"refused": "not replayed: this node cannot run it (see the log)",
}

func (h *Handler) deadLetters(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	q := r.URL.Query()
	offset, _ := strconv.Atoi(q.Get("offset"))
	offset = max(offset, 0)
	d := deadLettersData{Offset: offset}
	p := page{Title: "Dead letters", Data: &d}
	pg, err := h.opts.Source.DeadLetters(ctx, offset, PageSize)
	if err != nil {
		p.Error = "dead letters: " + err.Error()
	}
	d.Page = pg
	d.HasPrev, d.Prev = offset > 0, max(offset-PageSize, 0)
	d.HasNext, d.Next = offset+len(pg.Items) < pg.Total, offset+len(pg.Items)
	d.First, d.Last = offset+1, offset+len(pg.Items)
	if msg, ok := replayResults[q.Get("result")]; ok {
		d.ReplayedID, d.ReplayedResult = q.Get("replayed"), q.Get("result")
		p.Notice = msg
	}
	h.render(w, r, http.StatusOK, "dead-letters", p)
}

func (h *Handler) replay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	x, err := h.opts.Source.Replay(ctx, id)
	result := "ok"
	switch {
	case errors.Is(err, ErrNotFound):
		result = "missing"
	case err != nil:
		result = "refused"
		h.log.Warn("status page: replay refused", "dead_letter", id, "error", err)
	case x.Error != "":
		result = "failed"
	default:
		h.log.Info("status page: dead letter replayed", "dead_letter", id, "action", x.Action)
	}
	v := url.Values{"replayed": {id}, "result": {result}}
	http.Redirect(w, r, h.prefix+"dead-letters?"+v.Encode(), http.StatusSeeOther)
}

type runnersData struct {
	Runners    []Runner
	Controller bool
	Now        time.Time
}

func (h *Handler) runners(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	d := runnersData{Controller: true, Now: h.opts.Now()}
	p := page{Title: "Runners", Data: &d}
	rs, err := h.opts.Source.Runners(ctx)
	switch {
	case errors.Is(err, ErrNoRunners):
		d.Controller = false
	case err != nil:
		p.Error = "runners: " + err.Error()
	}
	d.Runners = rs
	h.render(w, r, http.StatusOK, "runners", p)
}

func (h *Handler) routes(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	p := page{Title: "Routes and configuration"}
	rs, err := h.opts.Source.Routes(ctx)
	if err != nil {
		p.Error = "routes: " + err.Error()
	}
	p.Data = rs
	h.render(w, r, http.StatusOK, "routes", p)
}

package ui

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const testKey = "s3cret-api-key"

// fakeSource serves fixed data and records what the page asked.
type fakeSource struct {
	mu        sync.Mutex
	execs     []Execution
	filters   []Filter
	dead      []DeadLetter
	replayed  []string
	replayErr error
	replayX   Execution
	runners   []Runner
	runErr    error
	routes    []Route
}

func (f *fakeSource) Executions(_ context.Context, fl Filter) ([]Execution, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, fl)
	return f.execs, nil
}

func (f *fakeSource) DeadLetters(_ context.Context, offset, limit int) (DeadLetterPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	items := f.dead[min(offset, len(f.dead)):]
	return DeadLetterPage{Items: items[:min(limit, len(items))], Total: len(f.dead)}, nil
}

func (f *fakeSource) Replay(_ context.Context, id string) (Execution, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replayed = append(f.replayed, id)
	return f.replayX, f.replayErr
}

func (f *fakeSource) Runners(context.Context) ([]Runner, error) { return f.runners, f.runErr }
func (f *fakeSource) Routes(context.Context) ([]Route, error)   { return f.routes, nil }

func (f *fakeSource) replays() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.replayed...)
}

// client drives the handler like a browser on http://postee.test.
type client struct {
	t      *testing.T
	h      http.Handler
	cookie *http.Cookie
}

const origin = "http://postee.test"

func (c *client) do(method, path string, form url.Values, hdr map[string]string) *http.Response {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, origin+path, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.cookie != nil {
		r.AddCookie(c.cookie)
	}
	for k, v := range hdr {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	return w.Result()
}

func sameSite() map[string]string {
	return map[string]string{"Origin": origin, "Sec-Fetch-Site": "same-origin"}
}

func bodyOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (c *client) login() {
	c.t.Helper()
	resp := c.do("POST", "/ui/login", url.Values{"key": {testKey}}, sameSite())
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("login: %d %s", resp.StatusCode, bodyOf(c.t, resp))
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == CookieName {
			c.cookie = ck
		}
	}
	if c.cookie == nil {
		c.t.Fatal("login set no session cookie")
	}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) csrf() string {
	c.t.Helper()
	resp := c.do("GET", "/ui/dead-letters", nil, nil)
	m := csrfRe.FindStringSubmatch(bodyOf(c.t, resp))
	if m == nil {
		c.t.Fatal("no form token on the page")
	}
	return m[1]
}

func newClient(t *testing.T, src Source, o Options) *client {
	o.Source = src
	if o.APIKey == "" {
		o.APIKey = testKey
	}
	return &client{t: t, h: New(o)}
}

func TestLoginAndCookie(t *testing.T) {
	tests := []struct {
		name       string
		key        string
		hdr        map[string]string
		tls        bool
		wantCode   int
		wantSecure bool
	}{
		{name: "right key", key: testKey, hdr: sameSite(), wantCode: 303},
		{name: "right key over https", key: testKey, hdr: sameSite(), tls: true, wantCode: 303, wantSecure: true},
		{name: "right key behind a TLS proxy", key: testKey, hdr: map[string]string{"Origin": origin, "X-Forwarded-Proto": "https"}, wantCode: 303, wantSecure: true},
		{name: "referer when no origin", key: testKey, hdr: map[string]string{"Referer": origin + "/ui/login"}, wantCode: 303},
		{name: "wrong key", key: "guess", hdr: sameSite(), wantCode: 401},
		{name: "empty key", key: "", hdr: sameSite(), wantCode: 401},
		{name: "key prefix", key: testKey[:5], hdr: sameSite(), wantCode: 401},
		{name: "no origin nor referer", key: testKey, hdr: nil, wantCode: 403},
		{name: "foreign origin", key: testKey, hdr: map[string]string{"Origin": "http://evil.test"}, wantCode: 403},
		{name: "null origin", key: testKey, hdr: map[string]string{"Origin": "null"}, wantCode: 403},
		{name: "cross-site fetch", key: testKey, hdr: map[string]string{"Origin": origin, "Sec-Fetch-Site": "cross-site"}, wantCode: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Options{Source: &fakeSource{}, APIKey: testKey})
			r := httptest.NewRequest("POST", origin+"/ui/login", strings.NewReader(url.Values{"key": {tt.key}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			resp := w.Result()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantCode, bodyOf(t, resp))
			}
			var ck *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == CookieName {
					ck = c
				}
			}
			if tt.wantCode != 303 {
				if ck != nil {
					t.Fatalf("a refused login set a cookie: %v", ck)
				}
				return
			}
			if loc := resp.Header.Get("Location"); loc != "/ui/executions" {
				t.Errorf("redirect to %q", loc)
			}
			if ck == nil {
				t.Fatal("no session cookie")
			}
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/ui/" || ck.Secure != tt.wantSecure || ck.MaxAge <= 0 {
				t.Errorf("cookie flags: %+v", ck)
			}
			if strings.Contains(ck.Value, testKey) || len(ck.Value) < 40 {
				t.Errorf("cookie value %q: must be a long random token, not the key", ck.Value)
			}
		})
	}
}

func TestPagesNeedALogin(t *testing.T) {
	c := newClient(t, &fakeSource{}, Options{})
	for _, p := range []string{"/ui/", "/ui/executions", "/ui/dead-letters", "/ui/runners", "/ui/routes"} {
		resp := c.do("GET", p, nil, nil)
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/login" {
			t.Errorf("GET %s: %d to %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp := c.do("GET", "/ui/executions?fragment=1", nil, nil); resp.StatusCode != 401 {
		t.Errorf("fragment without a session: %d, want 401", resp.StatusCode)
	}
	c.cookie = &http.Cookie{Name: CookieName, Value: testKey}
	if resp := c.do("GET", "/ui/executions", nil, nil); resp.StatusCode != 303 {
		t.Errorf("the key itself as the cookie: %d, want a redirect to the login", resp.StatusCode)
	}
	if resp := c.do("GET", "/ui/login", nil, nil); resp.StatusCode != 200 {
		t.Errorf("login form: %d", resp.StatusCode)
	}
	if resp := c.do("GET", "/ui/static/app.js", nil, nil); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
		t.Errorf("static script: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestNoAPIKeyClosesThePage(t *testing.T) {
	h := New(Options{Source: &fakeSource{}})
	for _, p := range []string{"/ui/login", "/ui/executions"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", origin+p, nil))
		if w.Code != 403 || !strings.Contains(w.Body.String(), "POSTEE_API_KEY") {
			t.Errorf("GET %s without a key configured: %d %s", p, w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", origin+"/ui/login", strings.NewReader("key="))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", origin)
	h.ServeHTTP(w, r)
	if w.Code != 403 {
		t.Errorf("empty key against an unset one: %d", w.Code)
	}
}

func TestSessionExpiresAndLogout(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := newClient(t, &fakeSource{}, Options{Now: clock, SessionLifetime: time.Hour})
	c.login()
	if resp := c.do("GET", "/ui/executions", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("logged in: %d", resp.StatusCode)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if resp := c.do("GET", "/ui/executions", nil, nil); resp.StatusCode != 303 {
		t.Fatalf("after the lifetime: %d, want the login", resp.StatusCode)
	}

	c.login()
	token := c.csrf()
	if resp := c.do("POST", "/ui/logout", url.Values{"csrf": {token}}, map[string]string{"Origin": "http://evil.test"}); resp.StatusCode != 403 {
		t.Fatalf("cross-origin logout: %d", resp.StatusCode)
	}
	if resp := c.do("POST", "/ui/logout", url.Values{}, sameSite()); resp.StatusCode != 403 {
		t.Fatalf("logout without the form token: %d", resp.StatusCode)
	}
	resp := c.do("POST", "/ui/logout", url.Values{"csrf": {token}}, sameSite())
	if resp.StatusCode != 303 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 || cs[0].Value != "" {
		t.Errorf("logout must clear the cookie: %+v", cs)
	}
	// The old token is dead on the server too, not only in the browser.
	if resp := c.do("GET", "/ui/executions", nil, nil); resp.StatusCode != 303 {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
}

func TestExecutionFilters(t *testing.T) {
	src := &fakeSource{
		routes:  []Route{{Name: "vulns", Actions: []Action{{Name: "slack"}, {Name: "jira"}}}},
		runners: []Runner{{Name: "r1"}},
		execs:   []Execution{{ID: "x1", Route: "vulns", Action: "jira", Runner: "r1", Outcome: OutcomeFailed, Error: "boom"}},
	}
	c := newClient(t, src, Options{})
	c.login()
	resp := c.do("GET", "/ui/executions?route=vulns&action=jira&runner=r1&outcome=failed&event=ev-9", nil, nil)
	page := bodyOf(t, resp)
	want := Filter{Route: "vulns", Action: "jira", Runner: "r1", Outcome: "failed", Event: "ev-9", Limit: PageSize}
	if got := src.filters[len(src.filters)-1]; got != want {
		t.Fatalf("filter %+v, want %+v", got, want)
	}
	for _, s := range []string{`<option selected>vulns</option>`, `<option selected>jira</option>`, `<option selected>r1</option>`,
		`<option selected>failed</option>`, `name="event" value="ev-9"`, `<option>slack</option>`, `data-outcome="failed"`, "boom"} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %s", s)
		}
	}
	// The live part refreshes with the same filters.
	if !strings.Contains(page, `data-live="/ui/executions?action=jira&amp;event=ev-9&amp;fragment=1&amp;outcome=failed&amp;route=vulns&amp;runner=r1"`) {
		t.Errorf("live URL missing or without the filters:\n%s", page)
	}
	frag := bodyOf(t, c.do("GET", "/ui/executions?route=vulns&fragment=1", nil, nil))
	if strings.Contains(frag, "<html") || strings.Contains(frag, "<form") || !strings.Contains(frag, `data-id="x1"`) {
		t.Errorf("fragment must be the table alone:\n%s", frag)
	}
}

// Outputs, errors and names come from events and services: all of it is
// text on the page, never markup.
func TestHostileTextIsEscaped(t *testing.T) {
	const hostile = `<script>alert(1)</script><img src=x onerror=alert(2)>"'&`
	src := &fakeSource{
		execs: []Execution{{ID: `x"><svg onload=alert(3)>`, Route: hostile, Action: hostile, Runner: hostile, Outcome: OutcomeFailed,
			EventID: hostile, Output: hostile, Error: hostile, Details: map[string]string{hostile: hostile}}},
		dead:    []DeadLetter{{ID: "d1", Route: hostile, Action: hostile, Error: hostile, Output: hostile}},
		runners: []Runner{{Name: hostile, Actions: []string{hostile}}},
		routes: []Route{{Name: hostile, Input: hostile, Template: Template{Name: hostile, Source: hostile},
			Actions: []Action{{Name: hostile, Type: hostile, RunsOn: hostile, Enabled: true}}}},
	}
	c := newClient(t, src, Options{})
	c.login()
	for _, p := range []string{"/ui/executions", "/ui/executions?fragment=1", "/ui/executions?route=" + url.QueryEscape(hostile),
		"/ui/dead-letters", "/ui/runners", "/ui/routes"} {
		page := bodyOf(t, c.do("GET", p, nil, nil))
		for _, bad := range []string{"<script>alert", "<img src=x", "<svg", "onerror=alert(2)>"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s: unescaped %q in:\n%s", p, bad, page)
			}
		}
		if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the hostile text is not shown escaped", p)
		}
	}
}

func TestReplayNeedsTheFormTokenAndSameOrigin(t *testing.T) {
	src := &fakeSource{dead: []DeadLetter{{ID: "dl-1", Route: "r", Action: "a", Error: "status 400"}}}
	c := newClient(t, src, Options{})
	c.login()
	token := c.csrf()
	refused := []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no form token", url.Values{}, sameSite()},
		{"wrong form token", url.Values{"csrf": {"forged"}}, sameSite()},
		{"foreign origin", url.Values{"csrf": {token}}, map[string]string{"Origin": "http://evil.test"}},
		{"foreign referer", url.Values{"csrf": {token}}, map[string]string{"Referer": "http://evil.test/x"}},
		{"no origin nor referer", url.Values{"csrf": {token}}, nil},
		{"cross-site fetch", url.Values{"csrf": {token}}, map[string]string{"Origin": origin, "Sec-Fetch-Site": "same-site"}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if resp := c.do("POST", "/ui/dead-letters/dl-1/replay", tt.form, tt.hdr); resp.StatusCode != 403 {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
		})
	}
	if got := src.replays(); len(got) != 0 {
		t.Fatalf("refused requests replayed %v", got)
	}
	if resp := c.do("GET", "/ui/dead-letters/dl-1/replay", nil, nil); resp.StatusCode != 405 {
		t.Errorf("replay by GET: %d, want 405", resp.StatusCode)
	}

	results := []struct {
		name string
		x    Execution
		err  error
		want string
	}{
		{"ok", Execution{Action: "a"}, nil, "ok"},
		{"failed again", Execution{Error: "status 400"}, nil, "failed"},
		{"gone", Execution{}, ErrNotFound, "missing"},
		{"refused", Execution{}, io.ErrUnexpectedEOF, "refused"},
	}
	for _, tt := range results {
		t.Run(tt.name, func(t *testing.T) {
			src.mu.Lock()
			src.replayX, src.replayErr = tt.x, tt.err
			src.mu.Unlock()
			resp := c.do("POST", "/ui/dead-letters/dl-1/replay", url.Values{"csrf": {token}}, sameSite())
			if resp.StatusCode != 303 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			loc := resp.Header.Get("Location")
			if loc != "/ui/dead-letters?replayed=dl-1&result="+tt.want {
				t.Fatalf("redirect to %q", loc)
			}
			page := bodyOf(t, c.do("GET", loc, nil, nil))
			if !strings.Contains(page, replayResults[tt.want]) {
				t.Errorf("page lacks the result %q", replayResults[tt.want])
			}
		})
	}
	if got := src.replays(); len(got) != 4 || got[0] != "dl-1" {
		t.Fatalf("replayed %v", got)
	}
}

func TestNoInlineScriptAndStrictHeaders(t *testing.T) {
	src := &fakeSource{execs: []Execution{{ID: "x", Outcome: OutcomeOK}}, routes: []Route{{Name: "r"}}}
	c := newClient(t, src, Options{})
	pages := map[string]string{"/ui/login": bodyOf(t, c.do("GET", "/ui/login", nil, nil))}
	c.login()
	for _, p := range []string{"/ui/executions", "/ui/dead-letters", "/ui/runners", "/ui/routes"} {
		resp := c.do("GET", p, nil, nil)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", p, resp.Header)
		}
		pages[p] = bodyOf(t, resp)
	}
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]|<script>|\son[a-z]+=|style=|javascript:|https?://`)
	for p, page := range pages {
		if m := inline.FindString(page); m != "" {
			t.Errorf("%s: inline script, style or external reference %q", p, m)
		}
	}
}

func TestRunnersAndRoutesPages(t *testing.T) {
	seen := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	src := &fakeSource{
		runners: []Runner{{Name: "r1", Online: true, LastSeen: seen, Backlog: 3, Actions: []string{"a1", "a2"}},
			{Name: "r2", Backlog: -1}},
		routes: []Route{
			{Name: "vulns", Input: `contains(input.image, "alpine")`, Matches: 42, Template: Template{Name: "slack-tmpl", Source: "rego-package postee.vuls.slack"},
				Actions: []Action{{Name: "to-slack", Type: "slack", Enabled: true}, {Name: "on-node", Type: "exec", RunsOn: "@origin"}, {Name: "ghost", Undefined: true}}},
			{Name: "quiet"},
		},
	}
	c := newClient(t, src, Options{})
	c.login()
	runners := bodyOf(t, c.do("GET", "/ui/runners", nil, nil))
	for _, s := range []string{`data-name="r1" data-state="online"`, `<span class="badge ok">online</span>`, "2026-03-04 05:06:07 UTC", "<td>3</td>", "a1, a2",
		`data-name="r2" data-state="offline"`, `<span class="badge failed">offline</span>`, "never", "unknown"} {
		if !strings.Contains(runners, s) {
			t.Errorf("runners page lacks %s", s)
		}
	}
	src.runErr = ErrNoRunners
	if p := bodyOf(t, c.do("GET", "/ui/runners", nil, nil)); !strings.Contains(p, "not a controller") {
		t.Errorf("standalone runners page:\n%s", p)
	}
	routes := bodyOf(t, c.do("GET", "/ui/routes", nil, nil))
	for _, s := range []string{`<td class="num matches">42</td>`, "slack-tmpl", "rego-package postee.vuls.slack", "to-slack", "<td>slack</td>",
		"@origin", `<span class="err">undefined</span>`, "no actions", "contains(input.image, &#34;alpine&#34;)"} {
		if !strings.Contains(routes, s) {
			t.Errorf("routes page lacks %s", s)
		}
	}
}

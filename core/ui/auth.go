package ui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// CookieName is the session cookie.
const CookieName = "postee_ui"

// DefaultSessionLifetime is how long a login lasts (Options.SessionLifetime).
const DefaultSessionLifetime = 12 * time.Hour

// maxSessions bounds the sessions held: past it, the one closest to its
// end is dropped.
const maxSessions = 1024

// session is one login. The browser holds a random token; the server keeps
// only its digest, so a memory dump or log of this map gives no cookie.
type session struct {
	expires time.Time
	// csrf is the token every form of the session carries.
	csrf string
}

type sessions struct {
	mu       sync.Mutex
	now      func() time.Time
	lifetime time.Duration
	m        map[[sha256.Size]byte]*session
}

func newSessions(now func() time.Time, lifetime time.Duration) *sessions {
	return &sessions{now: now, lifetime: lifetime, m: map[[sha256.Size]byte]*session{}}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session and returns its token.
func (s *sessions) create() (string, *session) {
	token := randomToken()
	ss := &session{expires: s.now().Add(s.lifetime), csrf: randomToken()}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, v := range s.m {
		if !now.Before(v.expires) {
			delete(s.m, k)
		}
	}
	for len(s.m) >= maxSessions {
		var oldest [sha256.Size]byte
		var at time.Time
		for k, v := range s.m {
			if at.IsZero() || v.expires.Before(at) {
				oldest, at = k, v.expires
			}
		}
		delete(s.m, oldest)
	}
	s.m[sha256.Sum256([]byte(token))] = ss
	return token, ss
}

// get returns the live session of token, or nil.
func (s *sessions) get(token string) *session {
	if token == "" {
		return nil
	}
	k := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[k]
	if ss == nil {
		return nil
	}
	if !s.now().Before(ss.expires) {
		delete(s.m, k)
		return nil
	}
	return ss
}

func (s *sessions) delete(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sha256.Sum256([]byte(token)))
}

type sessionKey struct{}

func sessionOf(r *http.Request) *session {
	ss, _ := r.Context().Value(sessionKey{}).(*session)
	return ss
}

func withSession(r *http.Request, ss *session) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), sessionKey{}, ss))
}

// keyEqual compares the typed key with the API key as digests, in
// constant time (no length leak).
func keyEqual(got string, want [sha256.Size]byte) bool {
	g := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(g[:], want[:]) == 1
}

// secure reports whether the browser reached us over HTTPS: directly, or
// through a proxy that says so. It only decides the cookie's Secure flag.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, token string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    token,
		Path:     h.prefix,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   secure(r),
		SameSite: http.SameSiteStrictMode,
	})
}

// sameOrigin reports whether a state-changing request comes from this
// site's own pages: Sec-Fetch-Site (when the browser sends it) must be
// same-origin, and Origin, or Referer without it, must name this host.
// A request with neither is refused.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" || src == "null" {
		return false
	}
	u, err := url.Parse(src)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// csrfOK checks the form token of the request's session.
func csrfOK(r *http.Request) bool {
	ss := sessionOf(r)
	got := r.PostFormValue("csrf")
	return ss != nil && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(ss.csrf)) == 1
}

// requireSession lets through requests of a live session; others go to
// the login form (pages) or get 401 (the script's refreshes).
func (h *Handler) requireSession(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var ss *session
		if c, err := r.Cookie(CookieName); err == nil {
			ss = h.sessions.get(c.Value)
		}
		if ss == nil {
			if r.Method == http.MethodGet && !isFragment(r) {
				http.Redirect(w, r, h.prefix+"login", http.StatusSeeOther)
				return
			}
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		next(w, withSession(r, ss))
	}
}

// guardPost refuses cross-site and token-less state changes.
func (h *Handler) guardPost(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !sameOrigin(r) {
			h.log.Warn("status page: cross-origin request refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "referer", r.Header.Get("Referer"))
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		if sessionOf(r) != nil && !csrfOK(r) {
			h.log.Warn("status page: request without the form token refused", "path", r.URL.Path)
			http.Error(w, "missing or wrong form token; reload the page", http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

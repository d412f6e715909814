package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// maxRedirects is how many redirects one request follows, as Go's client.
const maxRedirects = 10

// checkRedirect follows redirects, except, when the action has configured
// headers (they often carry credentials: API keys, tokens), a redirect to
// another host or from https to plain http: Go would send those headers
// along (it drops only Authorization and Cookie). Such a redirect is not
// followed; its 3xx is the answer, a permanent failure that redirectNote
// explains.
func (a *httpAction) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if len(a.header) == 0 {
		return nil
	}
	first, prev := via[0].URL, via[len(via)-1].URL
	if prev.Scheme == "https" && req.URL.Scheme != "https" || !sameHost(first, req.URL) {
		return http.ErrUseLastResponse
	}
	return nil
}

// sameHost compares host names (case-insensitively) and ports (the
// scheme's default when absent).
func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// redirectNote explains a 3xx answer to a request with configured headers:
// a redirect that was not followed, naming its target by scheme and host
// only (paths and queries may hold tokens).
func (a *httpAction) redirectNote(resp *http.Response) string {
	if len(a.header) == 0 || resp.StatusCode < 300 || resp.StatusCode > 399 {
		return ""
	}
	loc, err := resp.Location()
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (redirect to %s://%s not followed: the action's headers are only sent to the host of url, and over https when url is https; set url to the new address)", loc.Scheme, loc.Host)
}

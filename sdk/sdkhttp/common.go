package sdkhttp

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"time"

	"github.com/postee-dev/postee/sdk"
)

// DefaultTimeout bounds a request of an action whose `timeout` is not set.
const DefaultTimeout = 30 * time.Second

// Common are the settings every action that calls an HTTP service shares.
// Embed it in an action's settings struct; its keys are decoded with the
// action's own:
//
//	type settings struct {
//		sdkhttp.Common
//		URL string `json:"url"`
//	}
type Common struct {
	// TLSVerify is `tls-verify`: verify the server's certificate. Unset
	// means true; false is for test servers with self-signed certificates.
	TLSVerify *bool `json:"tls-verify"`
	// Timeout is `timeout`: the bound of one request, DefaultTimeout when
	// unset.
	Timeout *sdk.PositiveDuration `json:"timeout"`
}

// Verify reports whether certificates are verified (the default).
func (c Common) Verify() bool { return c.TLSVerify == nil || *c.TLSVerify }

// TimeoutOr returns the configured timeout, or def when none is set.
func (c Common) TimeoutOr(def time.Duration) time.Duration {
	if c.Timeout != nil {
		return c.Timeout.D()
	}
	return def
}

// Client returns a pooled client that verifies certificates unless
// `tls-verify: false`.
func (c Common) Client() *http.Client {
	cl := NewClient()
	if !c.Verify() {
		tr := cl.Transport.(*http.Transport)
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // the user's explicit tls-verify: false
	}
	return cl
}

// Redact returns the scheme and host of a URL, the part that may be shown
// in logs and errors: paths, queries and user info often hold tokens.
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

package sdkhttp

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/postee-dev/postee/sdk"
)

// Redacted replaces a secret in a text: RedactSecret's mark.
const Redacted = "[redacted]"

// StatusText writes an HTTP status for an error message:
// "status 404 Not Found", or "status 599" for a code without a name.
func StatusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("status %d %s", code, t)
	}
	return fmt.Sprintf("status %d", code)
}

// MaxSnippet bounds Snippet, in characters.
const MaxSnippet = 200

// Snippet quotes what a service answered, for an error saying the answer
// was not the one expected (a login page at a wrong url): "empty body", or
// the body on one line, at most MaxSnippet characters ("…" when cut).
func Snippet(body string) string {
	body = strings.TrimSpace(body)
	if body == "" {
		return "empty body"
	}
	return strings.Join(strings.Fields(Truncate(body, MaxSnippet)), " ")
}

// Restate rewords err, the failure of a call that got status code, with the
// service's own message: "<describe>: status 400 Bad Request: <message>".
// Whether err was permanent (sdk.Permanent) carries over.
func Restate(err error, describe string, code int, message string) error {
	e := fmt.Errorf("%s: %s: %s", describe, StatusText(code), message)
	if sdk.IsPermanent(err) {
		return sdk.Permanent(e)
	}
	return e
}

// Excerpt formats the start of a response body for an error message: ""
// for an empty body, else ": " and at most MaxErrorBody bytes of it (cut
// on a UTF-8 boundary, "…" added), as valid UTF-8 and trimmed of spaces.
func Excerpt(body []byte) string {
	cut := len(body) > MaxErrorBody
	if cut {
		n := MaxErrorBody
		for n > 0 && body[n]&0xC0 == 0x80 {
			n--
		}
		body = body[:n]
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD"))
	if s == "" {
		return ""
	}
	if cut {
		s += "…"
	}
	return ": " + s
}

// UTF16Len is the length of s in UTF-16 code units, the way Java and
// JavaScript services count characters: a character outside the Basic
// Multilingual Plane (an emoji) counts twice.
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16Units(r)
	}
	return n
}

// Truncate cuts s to at most max UTF-16 code units (see UTF16Len), ending
// with "…" when cut (trailing spaces before it removed), so that a text
// fits a service's limit on characters. Invalid UTF-8 becomes U+FFFD.
func Truncate(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if UTF16Len(s) <= max {
		return s
	}
	if max <= 0 {
		return ""
	}
	budget := max - 1 // room for the ellipsis
	used := 0
	for i, r := range s {
		if used+utf16Units(r) > budget {
			return strings.TrimRight(s[:i], " \t\r\n") + "…"
		}
		used += utf16Units(r)
	}
	return s
}

func utf16Units(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// RedactSecret replaces every occurrence of secret in s (a service's answer
// that may repeat the key it was sent) with Redacted. An empty secret
// changes nothing.
func RedactSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, Redacted)
}

// RedactSecretErr is err with secret redacted from its text, permanent when
// err is; err itself when its text does not hold the secret.
func RedactSecretErr(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	e := errors.New(RedactSecret(err.Error(), secret))
	if sdk.IsPermanent(err) {
		return sdk.Permanent(e)
	}
	return e
}

// Endpoint returns the URL of the API endpoint path under base, keeping
// base's path as a prefix (a proxy's): base https://proxy/og with path
// /v2/alerts is https://proxy/og/v2/alerts. A base that already ends with
// path is taken as it is; a fragment is dropped.
func Endpoint(base *url.URL, path string) string {
	u := *base
	p := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(p, path) {
		p += path
	}
	u.Path, u.RawPath = p, ""
	u.Fragment = ""
	return u.String()
}

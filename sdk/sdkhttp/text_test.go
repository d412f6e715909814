package sdkhttp

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/postee-dev/postee/sdk"
)

func TestStatusText(t *testing.T) {
	if got := StatusText(404); got != "status 404 Not Found" {
		t.Errorf("StatusText(404) = %q", got)
	}
	if got := StatusText(599); got != "status 599" {
		t.Errorf("StatusText(599) = %q", got)
	}
}

func TestExcerpt(t *testing.T) {
	long := strings.Repeat("a", MaxErrorBody-1) + "é"
	tests := []struct{ in, want string }{
		{"", ""},
		{"  \n", ""},
		{" busy \n", ": busy"},
		{"bad \xff", ": bad \uFFFD"},
		{long + "tail", ": " + strings.Repeat("a", MaxErrorBody-1) + "…"}, // not inside é
	}
	for _, tt := range tests {
		if got := Excerpt([]byte(tt.in)); got != tt.want {
			t.Errorf("Excerpt(%.20q) = %.40q, want %.40q", tt.in, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello world", 7, "hello…"}, // the space before the cut goes
		{"abcdef", 4, "abc…"},
		{"ab😀cd", 6, "ab😀cd"}, // the emoji counts 2
		{"ab😀cd", 5, "ab😀…"},
		{"ab😀cd", 4, "ab…"}, // the emoji does not fit beside the ellipsis
		{"ab😀cdef", 6, "ab😀c…"},
		{"x\xffy", 3, "x\uFFFDy"},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		got := Truncate(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
		if UTF16Len(got) > tt.max {
			t.Errorf("Truncate(%q, %d) = %q is %d units", tt.in, tt.max, got, UTF16Len(got))
		}
	}
	if n := UTF16Len("a😀é"); n != 4 {
		t.Errorf("UTF16Len = %d, want 4", n)
	}
}

func TestRedactSecret(t *testing.T) {
	const key = "R0UT1NGKEY"
	if got := RedactSecret("key "+key+" or "+key, key); got != "key [redacted] or [redacted]" {
		t.Errorf("RedactSecret = %q", got)
	}
	if got := RedactSecret("text", ""); got != "text" {
		t.Errorf("empty secret: %q", got)
	}
	plain := errors.New("no secret here")
	if RedactSecretErr(plain, key) != plain || RedactSecretErr(nil, key) != nil {
		t.Error("an error without the secret changed")
	}
	perm := RedactSecretErr(sdk.Permanentf("bad key %s", key), key)
	if perm.Error() != "bad key [redacted]" || !sdk.IsPermanent(perm) {
		t.Errorf("permanent: %v (permanent %v)", perm, sdk.IsPermanent(perm))
	}
	if e := RedactSecretErr(errors.New("retry "+key), key); e.Error() != "retry [redacted]" || sdk.IsPermanent(e) {
		t.Errorf("retryable: %v", e)
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct{ base, want string }{
		{"https://api.opsgenie.com", "https://api.opsgenie.com/v2/alerts"},
		{"https://proxy.example.com/og/", "https://proxy.example.com/og/v2/alerts"},
		{"https://proxy.example.com/og/v2/alerts", "https://proxy.example.com/og/v2/alerts"},
		{"https://h/p%2Fq?x=1#frag", "https://h/p/q/v2/alerts?x=1"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.base)
		if err != nil {
			t.Fatal(err)
		}
		if got := Endpoint(u, "/v2/alerts"); got != tt.want {
			t.Errorf("Endpoint(%s) = %s, want %s", tt.base, got, tt.want)
		}
	}
}

func TestSnippet(t *testing.T) {
	long := strings.Repeat("é", 300)
	for _, tt := range []struct{ in, want string }{
		{"", "empty body"},
		{"  \n ", "empty body"},
		{"<html>\n  <body>login</body>\n</html>", "<html> <body>login</body> </html>"},
		{long, strings.Repeat("é", MaxSnippet-1) + "…"},
	} {
		if got := Snippet(tt.in); got != tt.want {
			t.Errorf("Snippet(%.20q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRestate(t *testing.T) {
	base := errors.New("POST https://api.example.com: status 400 Bad Request: {...}")
	for _, tt := range []struct {
		err       error
		permanent bool
	}{{base, false}, {sdk.Permanent(base), true}} {
		got := Restate(tt.err, "POST https://api.example.com", 400, "invalid event")
		if got.Error() != "POST https://api.example.com: status 400 Bad Request: invalid event" || sdk.IsPermanent(got) != tt.permanent {
			t.Errorf("Restate(%v) = %v (permanent %v)", tt.err, got, sdk.IsPermanent(got))
		}
	}
}

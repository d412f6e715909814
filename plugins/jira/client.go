package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

const (
	// maxAnswer bounds a Jira answer read (the field list of a large
	// instance is a few MB).
	maxAnswer = 32 << 20
	// maxErrorText bounds the service's error text quoted in an error.
	maxErrorText = 1024
	userAgent    = "postee-jira"
)

// apiError is a non-2xx answer of Jira.
type apiError struct {
	op         string // "GET https://host rest/api/2/field"
	status     int
	text       string // Jira's messages, or the start of the body
	retryAfter string
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%s: status %d", e.op, e.status)
	if t := http.StatusText(e.status); t != "" {
		s += " " + t
	}
	if e.text != "" {
		s += ": " + e.text
	}
	return s
}

// transportError is a failed request without an answer.
type transportError struct {
	msg      string
	timedOut bool
}

func (e *transportError) Error() string { return e.msg }

// classify marks err permanent unless a later attempt may succeed: network
// errors, timeouts, 408, 425, 429 and 5xx.
func classify(err error) error {
	var ae *apiError
	if errors.As(err, &ae) && !sdkhttp.RetryableStatus(ae.status) {
		return sdk.Permanent(err)
	}
	return err
}

// request is one call to Jira.
type request struct {
	method string
	path   string // relative to the base URL: "rest/api/2/field"
	query  url.Values
	body   any
	// names maps field ids to names for the messages of an error.
	names map[string]string
}

// call sends r and decodes a 2xx JSON answer into out (when not nil). It
// returns the status of the answer.
func (a *jira) call(ctx context.Context, r request, out any) (int, error) {
	u := *a.base
	u.Path = a.base.Path + r.path
	u.RawPath = ""
	u.RawQuery = r.query.Encode()
	op := r.method + " " + a.target + " " + r.path

	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return 0, sdk.Permanentf("%s: encode the request: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return 0, sdk.Permanentf("%s: %w", op, sdkhttp.StripURL(err))
	}
	req.Header.Set("Authorization", a.auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", sdkhttp.ContentTypeJSON)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, &transportError{msg: fmt.Sprintf("%s: timed out after %s", op, a.timeout), timedOut: true}
		}
		return 0, &transportError{msg: fmt.Sprintf("%s: %v", op, sdkhttp.StripURL(err))}
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		_ = resp.Body.Close()
	}()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return resp.StatusCode, &transportError{msg: fmt.Sprintf("%s: reading the answer: %v", op, sdkhttp.StripURL(err))}
	}
	if len(data) > maxAnswer {
		return resp.StatusCode, sdk.Permanentf("%s: the answer is larger than %d MB", op, maxAnswer>>20)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, a.apiError(op, resp, data, r.names)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: status %d but the answer is not the JSON Jira sends: %v%s",
				op, resp.StatusCode, err, excerpt(data, resp.Header))
		}
	}
	return resp.StatusCode, nil
}

// apiError builds the error of a non-2xx answer with Jira's own messages.
func (a *jira) apiError(op string, resp *http.Response, body []byte, names map[string]string) *apiError {
	e := &apiError{op: op, status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	e.text = jiraMessages(body, names)
	if e.text == "" {
		e.text = strings.TrimPrefix(excerpt(body, resp.Header), ": ")
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		where := "another address"
		if loc, err := resp.Location(); err == nil {
			where = sdkhttp.Redact(loc)
		}
		e.text = "redirected to " + where + "; set url to the address Jira answers on"
	case resp.StatusCode == http.StatusUnauthorized:
		e.text = joinText("authentication failed: check user and password (on Jira Cloud: e-mail and API token) or token", e.text)
	}
	if reason := resp.Header.Get("X-Seraph-LoginReason"); reason != "" && resp.StatusCode == http.StatusForbidden {
		// Jira Server asks for a CAPTCHA after failed logins.
		e.text = joinText("login refused ("+reason+"); log in once in a browser to clear a CAPTCHA", e.text)
	}
	return e
}

func joinText(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

// jiraError is Jira's error body.
type jiraError struct {
	ErrorMessages []string          `json:"errorMessages"`
	Errors        map[string]string `json:"errors"`
	Message       string            `json:"message"`
}

// jiraMessages returns the messages of a Jira error body, fields named by
// names when known ("Severity (customfield_10010): ..."); "" if body is not
// one.
func jiraMessages(body []byte, names map[string]string) string {
	var je jiraError
	if json.Unmarshal(body, &je) != nil {
		return ""
	}
	var parts []string
	for _, m := range je.ErrorMessages {
		if m = strings.TrimSpace(m); m != "" {
			parts = append(parts, m)
		}
	}
	keys := make([]string, 0, len(je.Errors))
	for k := range je.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		label := k
		if n := names[k]; n != "" && n != k {
			label = n + " (" + k + ")"
		}
		parts = append(parts, label+": "+je.Errors[k])
	}
	if len(parts) == 0 && je.Message != "" {
		parts = append(parts, je.Message)
	}
	return bound(strings.Join(parts, "; "), maxErrorText)
}

// excerpt quotes the start of a body that is not HTML (a login page says
// nothing useful).
func excerpt(body []byte, h http.Header) string {
	if strings.Contains(h.Get("Content-Type"), "html") {
		return ""
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD"))
	if s == "" {
		return ""
	}
	return ": " + bound(s, sdkhttp.MaxErrorBody)
}

// bound cuts s to at most n bytes on a rune boundary, marking the cut.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// addErrorDetails records what err says about the answer in details.
func addErrorDetails(details map[string]string, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		details["status_code"] = strconv.Itoa(ae.status)
		if ae.retryAfter != "" {
			details["retry_after"] = ae.retryAfter
		}
	}
	var te *transportError
	if errors.As(err, &te) && te.timedOut {
		details["timed_out"] = "true"
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// since formats the time from start in milliseconds.
func since(start time.Time) string {
	return strconv.FormatInt(time.Since(start).Milliseconds(), 10)
}

// Package sdkhttp is for actions that call an HTTP endpoint (http, webhook,
// and the chat and ticketing actions to come): checking a URL setting, a
// pooled client, and one call turned into what Execute returns, with the
// retry classification postee expects.
package sdkhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
)

const (
	// MaxOutput bounds the start of the response body kept as the output.
	MaxOutput = 4 << 10
	// MaxErrorBody bounds the start of the response body quoted in an error.
	MaxErrorBody = 512
	// MaxDrain is how much of a response body beyond MaxOutput is read (and
	// discarded) so that the connection can be reused; past it, the
	// connection is closed instead.
	MaxDrain = 256 << 10

	ContentTypeJSON = "application/json"
	ContentTypeText = "text/plain; charset=utf-8"
)

// ParseURL checks the absolute http(s) URL of setting key.
func ParseURL(key, raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, sdk.SettingsErrorf(key, "is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, sdk.SettingsErrorf(key, "invalid URL: %v", StripURL(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, sdk.SettingsErrorf(key, "must be an absolute http:// or https:// URL")
	}
	if u.Host == "" {
		return nil, sdk.SettingsErrorf(key, "has no host")
	}
	return u, nil
}

// StripURL drops the URL a *url.Error repeats: it may hold a token.
func StripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// NewClient returns a client with its own pooled transport, sized so that
// thousands of requests a second reuse their connections, and with a
// write buffer that holds a request with a large header (the http action's
// Postee-Event header is the description in base64) and its body: one
// write instead of several.
func NewClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 64
	tr.IdleConnTimeout = 90 * time.Second
	tr.WriteBufferSize = 32 << 10
	return &http.Client{Transport: tr}
}

// ContentType is application/json for a JSON body, plain text otherwise.
//
// It looks at the first byte that is not JSON white space: '{' or '['
// means JSON without reading further (a body that starts like an object or
// an array is meant as one, and rendered JSON messages are large, so
// validating each would cost more than sending it); any other body is JSON
// when json.Valid says so (a string, number, true, false or null), which
// fails at the first byte or two of ordinary text. Every valid JSON body is
// therefore application/json; the only text sent as JSON is text that
// starts with '{' or '['.
//
// The body may be a string or bytes: an action sending a message's
// description needs no copy of it to choose the type.
func ContentType[B ~[]byte | ~string](body B) string {
	i := 0
	for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r') {
		i++
	}
	if i == len(body) {
		return ContentTypeText
	}
	switch c := body[i]; {
	case c == '{' || c == '[':
		return ContentTypeJSON
	case c != '"' && c != '-' && (c < '0' || c > '9') && c != 't' && c != 'f' && c != 'n':
		// No JSON value starts with c: text, without a copy of a string body.
		return ContentTypeText
	}
	if json.Valid([]byte(body)) {
		return ContentTypeJSON
	}
	return ContentTypeText
}

// RetryableStatus reports whether a non-2xx status may succeed later:
// 5xx, 408, 425 and 429.
func RetryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return code >= 500
}

// Call is one kind of request an action makes.
type Call struct {
	Client *http.Client
	// Describe starts every error, e.g. "POST https://hooks.example.com";
	// never the full URL, whose path may hold a token.
	Describe string
	// Timeout bounds the whole request, the response body included.
	Timeout time.Duration
	// Note, when set, adds text after the status in an error (e.g. why a
	// redirect was not followed).
	Note func(*http.Response) string
}

// Do sends req (its context is replaced by ctx with the timeout) and turns
// the outcome into an action's result: the start of the response body as
// the output, status_code, duration_ms, retry_after and timed_out as
// details; any 2xx is success; a non-2xx status is an error with the start
// of the body, permanent unless RetryableStatus; network errors and
// timeouts are retryable.
func (c Call) Do(ctx context.Context, req *http.Request) (sdk.Result, error) {
	reqCtx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	start := time.Now()
	resp, err := c.Client.Do(req.WithContext(reqCtx))
	details := map[string]string{}
	res := sdk.Result{Details: details}
	if err != nil {
		details["duration_ms"] = strconv.FormatInt(time.Since(start).Milliseconds(), 10)
		switch {
		case ctx.Err() != nil:
			return res, fmt.Errorf("%s: canceled: %w", c.Describe, context.Cause(ctx))
		case errors.Is(reqCtx.Err(), context.DeadlineExceeded):
			details["timed_out"] = "true"
			return res, fmt.Errorf("%s: timed out after %s", c.Describe, c.Timeout)
		}
		return res, fmt.Errorf("%s: %w", c.Describe, StripURL(err))
	}
	defer drainClose(resp.Body)
	head, _ := io.ReadAll(io.LimitReader(resp.Body, MaxOutput))
	res.Output = strings.ToValidUTF8(string(head), "\uFFFD")
	details["status_code"] = strconv.Itoa(resp.StatusCode)
	details["duration_ms"] = strconv.FormatInt(time.Since(start).Milliseconds(), 10)
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		details["retry_after"] = ra
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return res, nil
	}
	msg := StatusText(resp.StatusCode)
	if c.Note != nil {
		msg += c.Note(resp)
	}
	err = fmt.Errorf("%s: %s%s", c.Describe, msg, Excerpt(head))
	if !RetryableStatus(resp.StatusCode) {
		err = sdk.Permanent(err)
	}
	return res, err
}

// drainClose reads what is left of a response body (up to MaxDrain) so that
// the connection can be reused, then closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, MaxDrain)
	_ = body.Close()
}

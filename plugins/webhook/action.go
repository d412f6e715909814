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
	"strconv"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
)

const (
	// defaultTimeout bounds a request when `timeout` is not set, as in the
	// original postee.
	defaultTimeout = 120 * time.Second
	// maxRedirects bounds the 307/308 redirects followed for one request.
	maxRedirects = 10
	// maxOutput bounds the start of the response body kept as the output.
	maxOutput = 4 << 10
	// maxErrorBody bounds the start of the response body quoted in an error.
	maxErrorBody = 512
	// maxDrain is how much of a response body beyond maxOutput is read (and
	// discarded) so that the connection can be reused; past it, the
	// connection is closed instead.
	maxDrain = 256 << 10

	contentTypeJSON = "application/json"
	contentTypeText = "text/plain; charset=utf-8"
)

// settings are the keys of a webhook action's entry.
type settings struct {
	URL     string                `json:"url"`
	Timeout *sdk.PositiveDuration `json:"timeout"`
}

// webhookAction POSTs one request per execution. It is immutable after
// Configure, so executions may run concurrently.
type webhookAction struct {
	url     string
	target  string // scheme://host, for messages: paths often hold tokens
	timeout time.Duration
	client  *http.Client
}

var (
	_ sdk.Action = (*webhookAction)(nil)
	_ sdk.Closer = (*webhookAction)(nil)
)

func newAction() sdk.Action { return &webhookAction{} }

// Configure validates the settings; it does no I/O.
func (a *webhookAction) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	u, err := parseURL(s.URL)
	if err != nil {
		return err
	}
	a.url = strings.TrimSpace(s.URL)
	a.target = u.Scheme + "://" + u.Host
	a.timeout = defaultTimeout
	if s.Timeout != nil {
		a.timeout = s.Timeout.D()
	}
	a.client = newClient()
	return nil
}

func parseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, sdk.SettingsErrorf("url", "is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, sdk.SettingsErrorf("url", "invalid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, sdk.SettingsErrorf("url", "must be an absolute http:// or https:// URL")
	}
	if u.Host == "" {
		return nil, sdk.SettingsErrorf("url", "has no host")
	}
	return u, nil
}

// newClient returns the action's client, with its own connection pool sized
// for many concurrent requests to one host. It follows only the redirects
// that keep the method and body (307, 308): after a 301, 302 or 303 Go would
// send a GET without the message and report the answer to that.
func newClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 64
	tr.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.Method != via[0].Method {
				return http.ErrUseLastResponse
			}
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return nil
		},
	}
}

// Close releases the action's idle connections.
func (a *webhookAction) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

func contentType(body []byte) string {
	if json.Valid(body) {
		return contentTypeJSON
	}
	return contentTypeText
}

// Execute POSTs the description. 2xx is success; 5xx, 408, 425, 429,
// network errors and timeouts are retryable; other statuses are permanent.
func (a *webhookAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	body := []byte(ex.Message.Description)
	reqCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("POST %s: build request: %w", a.target, err)
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", contentType(body))
	}

	start := time.Now()
	resp, err := a.client.Do(req)
	if err != nil {
		details := map[string]string{"duration_ms": strconv.FormatInt(time.Since(start).Milliseconds(), 10)}
		res := sdk.Result{Details: details}
		switch {
		case ctx.Err() != nil:
			return res, fmt.Errorf("POST %s: canceled: %w", a.target, context.Cause(ctx))
		case errors.Is(reqCtx.Err(), context.DeadlineExceeded):
			details["timed_out"] = "true"
			return res, fmt.Errorf("POST %s: timed out after %s", a.target, a.timeout)
		}
		// url.Error repeats the whole URL, which may hold a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return res, fmt.Errorf("POST %s: %w", a.target, err)
	}
	defer drainClose(resp.Body)
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxOutput))

	res := sdk.Result{
		Output: strings.ToValidUTF8(string(head), "\uFFFD"),
		Details: map[string]string{
			"status_code": strconv.Itoa(resp.StatusCode),
			"duration_ms": strconv.FormatInt(time.Since(start).Milliseconds(), 10),
		},
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		res.Details["retry_after"] = ra
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return res, nil
	}
	msg := statusText(resp.StatusCode)
	if isRedirect(resp.StatusCode) {
		msg += redirectNote(resp)
	}
	err = fmt.Errorf("POST %s: %s%s", a.target, msg, excerpt(head))
	if !retryableStatus(resp.StatusCode) {
		err = sdk.Permanent(err)
	}
	return res, err
}

// retryableStatus reports whether a non-2xx status may succeed later.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return code >= 500
}

func isRedirect(code int) bool { return code >= 300 && code <= 399 }

// redirectNote explains a redirect that was not followed, naming its target
// by scheme and host only.
func redirectNote(resp *http.Response) string {
	loc, err := resp.Location()
	if err != nil {
		return ""
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther:
		return fmt.Sprintf(" (redirect to %s://%s not followed: it would turn the POST into a GET without the message; set url to the new address)", loc.Scheme, loc.Host)
	}
	return fmt.Sprintf(" (redirect to %s://%s not followed)", loc.Scheme, loc.Host)
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("status %d %s", code, t)
	}
	return fmt.Sprintf("status %d", code)
}

// excerpt formats the start of a response body for an error message.
func excerpt(body []byte) string {
	cut := len(body) > maxErrorBody
	if cut {
		n := maxErrorBody
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

// drainClose reads what is left of a response body (up to maxDrain) so that
// the connection can be reused, then closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, maxDrain)
	_ = body.Close()
}

package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

const (
	// defaultTimeout bounds a request when `timeout` is not set, as in the
	// original postee.
	defaultTimeout = 120 * time.Second
	// maxRedirects bounds the 307/308 redirects followed for one request.
	maxRedirects = 10
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

// ReadsEvent is false: the action sends the rendered message only
// (sdk.EventReader), so postee leaves the event out of its executions.
func (a *webhookAction) ReadsEvent() bool { return false }

// Configure validates the settings; it does no I/O.
func (a *webhookAction) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	u, err := sdkhttp.ParseURL("url", s.URL)
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

// newClient returns the action's client, with its own connection pool sized
// for many concurrent requests to one host. It follows only the redirects
// that keep the method and body (307, 308): after a 301, 302 or 303 Go would
// send a GET without the message and report the answer to that.
func newClient() *http.Client {
	c := sdkhttp.NewClient()
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.Method != via[0].Method {
			return http.ErrUseLastResponse
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
	return c
}

// Close releases the action's idle connections.
func (a *webhookAction) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// Execute POSTs the description. 2xx is success; 5xx, 408, 425, 429,
// network errors and timeouts are retryable; other statuses are permanent.
func (a *webhookAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	body := ex.Message.Description
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, strings.NewReader(body))
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("POST %s: build request: %w", a.target, err)
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", sdkhttp.ContentType(body))
	}
	return sdkhttp.Call{Client: a.client, Describe: "POST " + a.target, Timeout: a.timeout, Note: redirectNote}.Do(ctx, req)
}

func isRedirect(code int) bool { return code >= 300 && code <= 399 }

// redirectNote explains a redirect that was not followed, naming its target
// by scheme and host only.
func redirectNote(resp *http.Response) string {
	if !isRedirect(resp.StatusCode) {
		return ""
	}
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

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

// maxRedirects bounds the 307/308 redirects followed for one request.
const maxRedirects = 10

// settings are the keys of a slack action's entry.
type settings struct {
	sdkhttp.Common
	URL string `json:"url"`
}

// slackAction posts every message to an incoming webhook. Its settings are
// immutable after Configure; the progress of multi-part messages is guarded
// by its own mutex, so executions may run concurrently.
type slackAction struct {
	url     string
	target  string // scheme://host: the webhook URL's path is its secret
	timeout time.Duration
	client  *http.Client
	sent    *progress
}

var (
	_ sdk.Action = (*slackAction)(nil)
	_ sdk.Closer = (*slackAction)(nil)
)

func newAction() sdk.Action { return &slackAction{} }

// ReadsEvent is false: the action sends the rendered message only
// (sdk.EventReader), so postee leaves the event out of its executions.
func (a *slackAction) ReadsEvent() bool { return false }

// Configure validates the settings; it does no I/O.
func (a *slackAction) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		// Report a bad url with the other keys' problems.
		if !hasKey(err, "url") {
			raw, _ := cfg.Settings.Raw()["url"].(string)
			if _, uerr := sdkhttp.ParseURL("url", raw); uerr != nil {
				return errors.Join(err, uerr)
			}
		}
		return err
	}
	u, err := sdkhttp.ParseURL("url", s.URL)
	if err != nil {
		return err
	}
	a.url = strings.TrimSpace(s.URL)
	a.target = sdkhttp.Redact(u)
	a.timeout = s.TimeoutOr(sdkhttp.DefaultTimeout)
	a.client = s.Client()
	// Follow only the redirects that keep the POST and its body: after a
	// 301, 302 or 303 Go would send a GET without the message.
	a.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.Method != via[0].Method {
			return http.ErrUseLastResponse
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
	a.sent = newProgress(maxRemembered)
	return nil
}

// hasKey reports whether err is or joins a *sdk.SettingsError of key.
func hasKey(err error, key string) bool {
	if se, ok := err.(*sdk.SettingsError); ok {
		return se.Key == key
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if hasKey(e, key) {
				return true
			}
		}
	}
	return false
}

// Close releases the action's idle connections.
func (a *slackAction) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// Execute sends the message in one or more webhook requests, in order. A
// failed part ends the execution; a retry of the same execution with the
// same message starts at the part that failed.
func (a *slackAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	if a.client == nil {
		return sdk.Result{}, sdk.Permanent(errNotConfigured)
	}
	parts, err := buildParts(ex.Message)
	if err != nil {
		return sdk.Result{}, sdk.Permanent(err)
	}
	total := len(parts)
	digest := digestOf(parts)
	start := 0
	if total > 1 {
		start = a.sent.get(ex.ID, digest)
	}
	details := map[string]string{"parts_total": strconv.Itoa(total)}
	if start > 0 {
		details["parts_resumed"] = strconv.Itoa(start)
	}
	var elapsed time.Duration
	var answer string
	blocks := 0
	for i := start; i < total; i++ {
		res, err := a.post(ctx, parts[i])
		for k, v := range res.Details {
			if k != "duration_ms" {
				details[k] = v
			}
		}
		if ms, perr := strconv.ParseInt(res.Details["duration_ms"], 10, 64); perr == nil {
			elapsed += time.Duration(ms) * time.Millisecond
		}
		details["duration_ms"] = strconv.FormatInt(elapsed.Milliseconds(), 10)
		if err != nil {
			details["parts_sent"] = strconv.Itoa(i)
			if total > 1 {
				if i > 0 {
					a.sent.set(ex.ID, digest, i)
				}
				err = wrapPart(err, i+1, total)
			}
			return sdk.Result{Output: res.Output, Details: details}, err
		}
		answer = res.Output
		blocks += blockCount(parts[i])
	}
	a.sent.forget(ex.ID)
	details["parts_sent"] = strconv.Itoa(total)
	if blocks > 0 {
		details["blocks"] = strconv.Itoa(blocks)
	}
	return sdk.Result{Output: summary(answer, start, total), Details: details}, nil
}

// post sends one part.
func (a *slackAction) post(ctx context.Context, body []byte) (sdk.Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("POST %s: build request: %w", a.target, sdkhttp.StripURL(err))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	return sdkhttp.Call{Client: a.client, Describe: "POST " + a.target, Timeout: a.timeout, Note: redirectNote}.Do(ctx, req)
}

// wrapPart says which part failed; wrapping keeps whether the error is
// permanent (sdk.IsPermanent looks through it).
func wrapPart(err error, n, total int) error {
	return fmt.Errorf("part %d of %d: %w", n, total, err)
}

// summary is the output of a successful execution: Slack's answer ("ok")
// for one message, a count for several.
func summary(answer string, start, total int) string {
	switch {
	case total == 1:
		return answer
	case start == 0:
		return fmt.Sprintf("%d messages sent", total)
	case start == total-1:
		return fmt.Sprintf("%d messages sent (part %d now, the ones before by an earlier attempt)", total, total)
	}
	return fmt.Sprintf("%d messages sent (parts %d-%d now, the ones before by an earlier attempt)", total, start+1, total)
}

// redirectNote explains a redirect that was not followed, naming its target
// by scheme and host only.
func redirectNote(resp *http.Response) string {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return ""
	}
	loc, err := resp.Location()
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (redirect to %s not followed)", sdkhttp.Redact(loc))
}

func digestOf(parts [][]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p)) + ":"))
		h.Write(p)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

var errNotConfigured = errors.New("the action is not configured")

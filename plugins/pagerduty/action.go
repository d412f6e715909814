package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

const (
	// defaultURL is the Events API host; the EU service region uses
	// https://events.eu.pagerduty.com.
	defaultURL = "https://events.pagerduty.com"
	// enqueuePath is the Events API v2 endpoint, appended to url.
	enqueuePath = "/v2/enqueue"
	// accept is the media type the PagerDuty client libraries ask for.
	accept = "application/vnd.pagerduty+json;version=2"
)

// settings are the keys of a pagerduty action's entry.
type settings struct {
	sdkhttp.Common
	URL        string `json:"url"`
	RoutingKey string `json:"pagerduty-routing-key"`
	// AuthToken is accepted so that existing configs keep working; the
	// Events API authenticates by the routing key alone and the token is
	// never sent.
	AuthToken string `json:"pagerduty-auth-token"`
}

// pagerdutyAction triggers one PagerDuty alert per execution. It is
// immutable after Configure, so executions may run concurrently.
type pagerdutyAction struct {
	endpoint   string // <url>/v2/enqueue
	describe   string // "POST scheme://host", for errors
	routingKey string
	timeout    time.Duration
	client     *http.Client
}

var (
	_ sdk.Action      = (*pagerdutyAction)(nil)
	_ sdk.Closer      = (*pagerdutyAction)(nil)
	_ sdk.EventReader = (*pagerdutyAction)(nil)
)

func newAction() sdk.Action { return &pagerdutyAction{} }

// ReadsEvent is false: the action sends the rendered message only
// (sdk.EventReader), so postee leaves the event out of its executions.
func (a *pagerdutyAction) ReadsEvent() bool { return false }

// Configure validates the settings; it does no I/O.
func (a *pagerdutyAction) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	var errs []error
	raw := s.URL
	if strings.TrimSpace(raw) == "" {
		raw = defaultURL
	}
	u, err := sdkhttp.ParseURL("url", raw)
	if err != nil {
		errs = append(errs, err)
	} else {
		a.endpoint = sdkhttp.Endpoint(u, enqueuePath)
		a.describe = "POST " + sdkhttp.Redact(u)
	}

	a.routingKey = strings.TrimSpace(s.RoutingKey)
	switch {
	case a.routingKey == "":
		errs = append(errs, sdk.SettingsErrorf("pagerduty-routing-key",
			"is required: the integration key of an Events API v2 integration of the PagerDuty service"))
	case strings.ContainsFunc(a.routingKey, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		errs = append(errs, sdk.SettingsErrorf("pagerduty-routing-key", "contains spaces or control characters"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if s.AuthToken != "" {
		sdk.Logger().Debug("pagerduty-auth-token is not used: the Events API v2 authenticates by the routing key", "action", cfg.Name)
	}
	a.timeout = s.TimeoutOr(sdkhttp.DefaultTimeout)
	a.client = s.Client()
	return nil
}

// Close releases the action's idle connections.
func (a *pagerdutyAction) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// response is the Events API's answer, on success and on error.
type response struct {
	Status   string          `json:"status"`
	Message  string          `json:"message"`
	DedupKey string          `json:"dedup_key"`
	Errors   json.RawMessage `json:"errors"`
}

// Execute enqueues a trigger event.
func (a *pagerdutyAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	ev := buildEvent(a.routingKey, ex)
	body, err := json.Marshal(ev)
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("%s: encode event: %w", a.describe, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, bytes.NewReader(body))
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("%s: build request: %w", a.describe, sdkhttp.StripURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)

	res, err := sdkhttp.Call{Client: a.client, Describe: a.describe, Timeout: a.timeout}.Do(ctx, req)
	if res.Details == nil {
		res.Details = map[string]string{}
	}
	res.Output = a.redact(res.Output)
	res.Details["dedup_key"] = ev.DedupKey
	res.Details["severity"] = ev.Payload.Severity
	if ev.truncated {
		res.Details["summary_truncated"] = "true"
	}
	if ev.detailsCut {
		res.Details["description_truncated"] = "true"
	}
	status := res.Details["status_code"]
	if status == "" {
		// No answer: a network error, a timeout or a cancellation.
		return res, err
	}
	var r response
	parsed := json.Unmarshal([]byte(res.Output), &r) == nil
	if err != nil {
		if !parsed || (r.Message == "" && r.Status == "") {
			return res, a.redactErr(err)
		}
		code, _ := strconv.Atoi(status)
		return res, sdkhttp.Restate(err, a.describe, code, a.redact(r.text()))
	}
	if !parsed || r.Status != "success" {
		return res, sdk.Permanentf("%s: status %s but not an Events API answer (want {\"status\":\"success\",...}); check url: %s",
			a.describe, status, sdkhttp.Snippet(res.Output))
	}
	if r.DedupKey != "" {
		res.Details["dedup_key"] = a.redact(r.DedupKey)
	}
	return res, nil
}

// text is an error answer as one line: its status, message and errors.
func (r response) text() string {
	var parts []string
	for _, s := range []string{r.Status, r.Message} {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	msg := strings.Join(parts, ": ")
	if list := errorList(r.Errors); len(list) > 0 {
		msg += " (" + strings.Join(list, "; ") + ")"
	}
	return oneLine(sdkhttp.Truncate(msg, sdkhttp.MaxErrorBody))
}

// errorList reads the errors of an answer: documented as a list of strings;
// anything else is quoted as JSON.
func errorList(raw json.RawMessage) []string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var list []any
	if json.Unmarshal(raw, &list) != nil {
		return []string{string(raw)}
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
			continue
		}
		b, _ := json.Marshal(e)
		out = append(out, string(b))
	}
	return out
}

// redact removes the routing key from a text coming from the service.
func (a *pagerdutyAction) redact(s string) string { return sdkhttp.RedactSecret(s, a.routingKey) }

func (a *pagerdutyAction) redactErr(err error) error {
	return sdkhttp.RedactSecretErr(err, a.routingKey)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

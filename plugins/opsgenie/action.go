package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

const (
	// defaultURL is the Opsgenie API host; accounts in the EU region use
	// https://api.eu.opsgenie.com.
	defaultURL = "https://api.opsgenie.com"
	// alertsPath is the create-alert endpoint, appended to url.
	alertsPath = "/v2/alerts"
	// defaultPriority is the priority without a `priority` setting.
	defaultPriority = "P3"
)

// settings are the keys of an opsgenie action's entry.
type settings struct {
	sdkhttp.Common
	URL        string   `json:"url"`
	Token      string   `json:"token"`
	User       string   `json:"user"`
	Assignee   []string `json:"assignee"`
	Recipients []string `json:"recipients"`
	Priority   string   `json:"priority"`
	Tags       []string `json:"tags"`
	Alias      string   `json:"alias"`
	Entity     string   `json:"entity"`
}

// opsgenieAction creates one alert per execution. It is immutable after
// Configure, so executions may run concurrently.
type opsgenieAction struct {
	endpoint   string // <url>/v2/alerts
	describe   string // "POST scheme://host", for errors
	auth       string // "GenieKey <token>"
	token      string
	user       string
	responders []target // from assignee
	visibleTo  []target // from recipients
	priority   string
	tags       []string
	alias      string
	entity     string
	timeout    time.Duration
	client     *http.Client
}

var (
	_ sdk.Action = (*opsgenieAction)(nil)
	_ sdk.Closer = (*opsgenieAction)(nil)
)

func newAction() sdk.Action { return &opsgenieAction{} }

// Configure validates the settings; it does no I/O.
func (a *opsgenieAction) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	raw := s.URL
	if strings.TrimSpace(raw) == "" {
		raw = defaultURL
	}
	u, err := sdkhttp.ParseURL("url", raw)
	add(err)
	if u != nil {
		a.endpoint = sdkhttp.Endpoint(u, alertsPath)
		a.describe = "POST " + sdkhttp.Redact(u)
	}

	a.token = strings.TrimSpace(s.Token)
	switch {
	case a.token == "":
		add(sdk.SettingsErrorf("token", "is required: the API key of an API integration of Opsgenie"))
	case strings.ContainsFunc(a.token, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		add(sdk.SettingsErrorf("token", "contains spaces or control characters"))
	}
	a.auth = "GenieKey " + a.token

	a.priority = defaultPriority
	if strings.TrimSpace(s.Priority) != "" {
		p, ok := normalizePriority(s.Priority)
		if !ok {
			add(sdk.SettingsErrorf("priority", "%q is not an Opsgenie priority (P1, P2, P3, P4 or P5)", s.Priority))
		}
		a.priority = p
	}

	var rerr error
	a.responders, rerr = parseTargets("assignee", s.Assignee, responderTypes)
	add(rerr)
	a.visibleTo, rerr = parseTargets("recipients", s.Recipients, visibleTypes)
	add(rerr)

	a.user = sdkhttp.Truncate(strings.TrimSpace(s.User), maxUser)
	a.tags = cleanTags(s.Tags)
	a.alias = sdkhttp.Truncate(strings.TrimSpace(s.Alias), maxAlias)
	a.entity = sdkhttp.Truncate(strings.TrimSpace(s.Entity), maxEntity)

	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.timeout = s.TimeoutOr(sdkhttp.DefaultTimeout)
	a.client = s.Client()
	return nil
}

// normalizePriority accepts p1 … P5 in any case.
func normalizePriority(p string) (string, bool) {
	p = strings.ToUpper(strings.TrimSpace(p))
	switch p {
	case "P1", "P2", "P3", "P4", "P5":
		return p, true
	}
	return p, false
}

// Close releases the action's idle connections.
func (a *opsgenieAction) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// answer is Opsgenie's response, on success and on error.
type answer struct {
	Result    string          `json:"result"`
	Message   string          `json:"message"`
	RequestID string          `json:"requestId"`
	Errors    json.RawMessage `json:"errors"`
}

// Execute creates the alert.
func (a *opsgenieAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	al, notes := a.buildAlert(ex)
	for _, n := range notes {
		sdk.Logger().Warn(n, "action", ex.Action, "route", ex.Route)
	}
	body, err := json.Marshal(al)
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("%s: encode alert: %w", a.describe, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, bytes.NewReader(body))
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("%s: build request: %w", a.describe, sdkhttp.StripURL(err))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", a.auth)

	res, err := sdkhttp.Call{Client: a.client, Describe: a.describe, Timeout: a.timeout}.Do(ctx, req)
	if res.Details == nil {
		res.Details = map[string]string{}
	}
	res.Output = a.redact(res.Output)
	res.Details["alias"] = al.Alias
	res.Details["priority"] = al.Priority
	if len(notes) > 0 {
		res.Details["notes"] = strings.Join(notes, "; ")
	}
	status := res.Details["status_code"]
	if status == "" {
		// No answer: a network error, a timeout or a cancellation.
		return res, err
	}
	var r answer
	parsed := json.Unmarshal([]byte(res.Output), &r) == nil
	if parsed && r.RequestID != "" {
		res.Details["request_id"] = a.redact(r.RequestID)
	}
	if err != nil {
		if !parsed || strings.TrimSpace(r.Message) == "" {
			return res, a.redactErr(err)
		}
		code, _ := strconv.Atoi(status)
		return res, sdkhttp.Restate(err, a.describe, code, a.redact(r.text()))
	}
	if !parsed || (r.Result == "" && r.RequestID == "") {
		return res, sdk.Permanentf("%s: status %s but not an Opsgenie answer (want {\"result\":...,\"requestId\":...}); check url: %s",
			a.describe, status, sdkhttp.Snippet(res.Output))
	}
	return res, nil
}

// text is an error answer as one line: the message and the errors by field.
func (r answer) text() string {
	msg := strings.TrimSpace(r.Message)
	if list := errorList(r.Errors); len(list) > 0 {
		msg += " (" + strings.Join(list, "; ") + ")"
	}
	return oneLine(sdkhttp.Truncate(msg, sdkhttp.MaxErrorBody))
}

// errorList reads the errors of an answer: an object of field → message;
// anything else is quoted as JSON.
func errorList(raw json.RawMessage) []string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return []string{string(raw)}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+": "+text(m[k]))
	}
	return out
}

// redact removes the token from a text coming from the service.
func (a *opsgenieAction) redact(s string) string { return sdkhttp.RedactSecret(s, a.token) }

func (a *opsgenieAction) redactErr(err error) error { return sdkhttp.RedactSecretErr(err, a.token) }

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

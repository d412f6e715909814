package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

const (
	// defaultBoard is the table records are created in, as in the original
	// postee.
	defaultBoard = "incident"
	// instanceDomain follows the instance name in the host.
	instanceDomain = ".service-now.com"
)

var (
	instanceName = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$`)
	tableName    = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// settings are the keys of a servicenow action's entry.
type settings struct {
	sdkhttp.Common
	Instance string `json:"instance"`
	URL      string `json:"url"`
	User     string `json:"user"`
	Password string `json:"password"`
	Board    string `json:"board"`
}

// serviceNowAction creates one record per execution. It is immutable after
// Configure, so executions may run concurrently.
type serviceNowAction struct {
	base     string // https://host[/prefix], no trailing slash
	endpoint string // the table API URL with its query
	target   string // scheme://host, for messages
	table    string
	user     string
	password string
	timeout  time.Duration
	client   *http.Client
}

var (
	_ sdk.Action      = (*serviceNowAction)(nil)
	_ sdk.Closer      = (*serviceNowAction)(nil)
	_ sdk.EventReader = (*serviceNowAction)(nil)
)

func newAction() sdk.Action { return &serviceNowAction{} }

// ReadsEvent is false: the action sends the rendered message only
// (sdk.EventReader), so postee leaves the event out of its executions.
func (a *serviceNowAction) ReadsEvent() bool { return false }

// Configure validates the settings; it does no I/O.
func (a *serviceNowAction) Configure(_ context.Context, cfg sdk.Config) error {
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

	var base *url.URL
	instance := strings.TrimSpace(s.Instance)
	switch {
	case instance != "" && strings.TrimSpace(s.URL) != "":
		add(sdk.SettingsErrorf("url", "set either instance or url, not both"))
	case instance != "":
		if !instanceName.MatchString(instance) {
			add(sdk.SettingsErrorf("instance", "must be the instance name only, e.g. dev12345 for https://dev12345.service-now.com; set url for another address"))
			break
		}
		base = &url.URL{Scheme: "https", Host: strings.ToLower(instance) + instanceDomain}
	case strings.TrimSpace(s.URL) != "":
		u, err := sdkhttp.ParseURL("url", s.URL)
		add(err)
		if u != nil {
			if strings.Contains(strings.TrimRight(u.Path, "/"), "/api/now") {
				add(sdk.SettingsErrorf("url", "must be the instance's address (e.g. https://servicenow.example.com), without /api/now/table/...; the table is set with board"))
			}
			if u.User != nil {
				add(sdk.SettingsErrorf("url", "must not hold credentials; use user and password"))
			}
			base = u
		}
	default:
		add(sdk.SettingsErrorf("instance", "is required: the instance name (dev12345 for https://dev12345.service-now.com), or url for any address"))
	}

	a.user, a.password = s.User, s.Password
	if strings.TrimSpace(s.User) == "" {
		add(sdk.SettingsErrorf("user", "is required (the ServiceNow user records are created as)"))
	} else if strings.Contains(s.User, ":") {
		add(sdk.SettingsErrorf("user", "must not contain ':' (Basic authentication)"))
	}
	if s.Password == "" {
		add(sdk.SettingsErrorf("password", "is required (e.g. password: $SERVICENOW_PASSWORD)"))
	}

	a.table = defaultBoard
	if b := strings.TrimSpace(s.Board); b != "" {
		a.table = b
		if !tableName.MatchString(b) {
			add(sdk.SettingsErrorf("board", "%q is not a table name (letters, digits and '_', e.g. incident or u_security_finding)", s.Board))
		}
	}
	a.timeout = s.TimeoutOr(sdkhttp.DefaultTimeout)

	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.target = sdkhttp.Redact(base)
	a.base, a.endpoint = endpoint(base, a.table)
	a.client = s.Client()
	return nil
}

// endpoint returns the instance's base URL and the Table API URL for table.
// The answer is asked for the record's number and sys_id only.
func endpoint(base *url.URL, table string) (string, string) {
	b := *base
	b.Path = strings.TrimRight(b.Path, "/")
	b.RawPath, b.RawQuery, b.Fragment = "", "", ""
	e := b
	e.Path += "/api/now/table/" + table
	q := base.Query()
	q.Set("sysparm_fields", "number,sys_id")
	q.Set("sysparm_exclude_reference_link", "true")
	e.RawQuery = q.Encode()
	return b.String(), e.String()
}

// Close releases the action's idle connections.
func (a *serviceNowAction) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// Execute creates the record.
func (a *serviceNowAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	rec, mode := record(ex.Message, a.user)
	body, err := encode(rec)
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("encode the record: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, bytes.NewReader(body))
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("POST %s: build request: %w", a.target, err)
	}
	req.SetBasicAuth(a.user, a.password)
	req.Header.Set("Content-Type", sdkhttp.ContentTypeJSON)
	req.Header.Set("Accept", sdkhttp.ContentTypeJSON)
	describe := fmt.Sprintf("POST %s (table %s)", a.target, a.table)
	res, err := sdkhttp.Call{Client: a.client, Describe: describe, Timeout: a.timeout}.Do(ctx, req)
	res.Details["table"] = a.table
	res.Details["record_from"] = mode
	status, _ := strconv.Atoi(res.Details["status_code"])
	if status == 0 {
		return res, err
	}
	if err != nil {
		return res, a.failure(describe, status, res.Output, err)
	}
	var ans struct {
		Result struct {
			Number string `json:"number"`
			SysID  string `json:"sys_id"`
		} `json:"result"`
	}
	if json.Unmarshal([]byte(res.Output), &ans) != nil || ans.Result.SysID == "" {
		return res, sdk.Permanentf("%s: status %d but the answer is not a created record: %s (is the instance awake, and url its address?)", describe, status, sdkhttp.Snippet(res.Output))
	}
	res.Details["sys_id"] = ans.Result.SysID
	res.Details["record_url"] = a.base + "/" + a.table + ".do?sys_id=" + url.QueryEscape(ans.Result.SysID)
	if ans.Result.Number != "" {
		res.Details["number"] = ans.Result.Number
		res.Output = fmt.Sprintf("created %s %s (sys_id %s)", a.table, ans.Result.Number, ans.Result.SysID)
	} else {
		res.Output = fmt.Sprintf("created %s record %s", a.table, ans.Result.SysID)
	}
	return res, nil
}

// failure turns an error answer into an error with ServiceNow's message
// and detail ({"error":{"message":"...","detail":"..."},"status":"failure"})
// when the answer has them; the permanence of callErr is kept.
func (a *serviceNowAction) failure(describe string, status int, body string, callErr error) error {
	var ans struct {
		Error struct {
			Message string `json:"message"`
			Detail  any    `json:"detail"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(body), &ans) != nil || ans.Error.Message == "" {
		return callErr
	}
	msg := fmt.Sprintf("%s: status %d: %s", describe, status, ans.Error.Message)
	if d := text(ans.Error.Detail); d != "" && d != ans.Error.Message {
		msg += ": " + d
	}
	err := errors.New(msg)
	if sdk.IsPermanent(callErr) {
		err = sdk.Permanent(err)
	}
	return err
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// encode writes v as JSON without HTML escaping (work_notes holds HTML).
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

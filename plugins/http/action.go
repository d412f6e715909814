package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
)

const (
	// defaultTimeout bounds a request when `timeout` is not set, as in the
	// original postee.
	defaultTimeout = 5 * time.Second
	// maxBodyFile bounds the size of body-file.
	maxBodyFile = 10 << 20
	// maxOutput bounds the start of the response body kept as the output.
	maxOutput = 4 << 10
	// maxErrorBody bounds the start of the response body quoted in an error.
	maxErrorBody = 512
	// maxDrain is how much of a response body beyond maxOutput is read (and
	// discarded) so that the connection can be reused; past it, the
	// connection is closed instead.
	maxDrain = 256 << 10
	// maxEventHeader bounds the Postee-Event header (base64 characters);
	// a larger description is sent without it.
	maxEventHeader = 64 << 10
	// eventHeader carries the base64 description, as the original postee did.
	eventHeader = "Postee-Event"

	contentTypeJSON = "application/json"
	contentTypeText = "text/plain; charset=utf-8"
)

// settings are the keys of an http action's entry.
type settings struct {
	URL     string                `json:"url"`
	Method  string                `json:"method"`
	Headers headersSetting        `json:"headers"`
	Timeout *sdk.PositiveDuration `json:"timeout"`
	// BodyContent is a pointer so that an explicitly empty body can be told
	// from no body setting at all.
	BodyContent *string `json:"body-content"`
	BodyFile    string  `json:"body-file"`
}

// headersSetting maps header names to values. As in the original postee a
// header's values are a list; a single scalar value is accepted too.
type headersSetting map[string][]string

func (h *headersSetting) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return sdk.SettingsErrorf("headers", "%v", err)
	}
	if raw == nil {
		return nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return sdk.SettingsErrorf("headers", "must be a mapping of header names to values")
	}
	out := make(headersSetting, len(m))
	for name, v := range m {
		if list, ok := v.([]any); ok {
			for _, e := range list {
				s, ok := scalarText(e)
				if !ok {
					return sdk.SettingsErrorf("headers", "%s: values must be strings", name)
				}
				out[name] = append(out[name], s)
			}
			continue
		}
		s, ok := scalarText(v)
		if !ok {
			return sdk.SettingsErrorf("headers", "%s: must be a string or a list of strings", name)
		}
		out[name] = []string{s}
	}
	*h = out
	return nil
}

func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// httpAction sends one request per execution. It is immutable after
// Configure, so executions may run concurrently.
type httpAction struct {
	url    string
	target string // scheme://host, for messages: paths often hold tokens
	method string
	header http.Header
	host   string // a configured Host header
	// contentType is whether a Content-Type header was configured.
	contentType bool
	// eventHeader is whether the Postee-Event header is added.
	eventHeader bool
	timeout     time.Duration
	// tmpl is the configured body; nil sends the message description.
	tmpl *bodyTemplate
	// static and staticType are the body and its content type when tmpl has
	// no placeholders.
	static     []byte
	staticType string
	client     *http.Client
}

var (
	_ sdk.Action = (*httpAction)(nil)
	_ sdk.Closer = (*httpAction)(nil)
)

func newAction() sdk.Action { return &httpAction{} }

// Configure validates the settings and reads body-file.
func (a *httpAction) Configure(_ context.Context, cfg sdk.Config) error {
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

	u, err := parseURL(s.URL)
	add(err)
	if u != nil {
		a.url = strings.TrimSpace(s.URL)
		a.target = u.Scheme + "://" + u.Host
	}

	a.method = strings.ToUpper(strings.TrimSpace(s.Method))
	switch {
	case a.method == "":
		add(sdk.SettingsErrorf("method", "is required (e.g. POST, PUT, GET)"))
	case !isToken(a.method):
		add(sdk.SettingsErrorf("method", "%q is not a valid HTTP method", s.Method))
	}

	a.header = http.Header{}
	a.eventHeader = true
	names := make([]string, 0, len(s.Headers))
	for name := range s.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := checkHeader(name, s.Headers[name]); err != nil {
			add(err)
			continue
		}
		switch http.CanonicalHeaderKey(name) {
		case "Host":
			a.host = s.Headers[name][0]
			continue
		case "Content-Type":
			a.contentType = true
		case eventHeader:
			a.eventHeader = false
		}
		for _, v := range s.Headers[name] {
			a.header.Add(name, v)
		}
	}

	a.timeout = defaultTimeout
	if s.Timeout != nil {
		a.timeout = s.Timeout.D()
	}

	switch {
	case s.BodyContent != nil && s.BodyFile != "":
		add(sdk.SettingsErrorf("body-file", "cannot be used together with body-content; set only one"))
	case s.BodyContent != nil:
		a.setBody(*s.BodyContent)
	case s.BodyFile != "":
		body, err := readBodyFile(s.BodyFile)
		add(err)
		a.setBody(body)
	}

	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.client = newClient()
	return nil
}

func (a *httpAction) setBody(body string) {
	t := parseTemplate(body)
	a.tmpl = &t
	if !t.placeholders {
		a.static = []byte(body)
		a.staticType = detectContentType(a.static)
	}
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

func checkHeader(name string, values []string) error {
	if !isToken(name) {
		return sdk.SettingsErrorf("headers", "%q is not a valid header name", name)
	}
	switch http.CanonicalHeaderKey(name) {
	case "Content-Length", "Transfer-Encoding", "Connection":
		return sdk.SettingsErrorf("headers", "%s is set by postee and cannot be configured", name)
	case "Host":
		if len(values) != 1 {
			return sdk.SettingsErrorf("headers", "Host must have exactly one value")
		}
	}
	for _, v := range values {
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
				return sdk.SettingsErrorf("headers", "%s: value contains a control character", name)
			}
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token (methods, header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func readBodyFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", sdk.SettingsErrorf("body-file", "cannot read the body: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return "", sdk.SettingsErrorf("body-file", "%s is not a regular file", path)
	}
	if fi.Size() > maxBodyFile {
		return "", sdk.SettingsErrorf("body-file", "%s is %d bytes; at most %d are allowed", path, fi.Size(), maxBodyFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", sdk.SettingsErrorf("body-file", "cannot read the body: %v", err)
	}
	return string(b), nil
}

// newClient returns the action's client, with its own connection pool sized
// for many concurrent requests to one host.
func newClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 64
	tr.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: tr}
}

// Close releases the action's idle connections.
func (a *httpAction) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// body returns the request body for ex and its content type.
func (a *httpAction) body(ex *sdk.Execution) ([]byte, string, error) {
	switch {
	case a.tmpl == nil:
		b := []byte(ex.Message.Description)
		return b, detectContentType(b), nil
	case !a.tmpl.placeholders:
		return a.static, a.staticType, nil
	}
	s, err := a.tmpl.execute(ex.Event)
	if err != nil {
		return nil, "", err
	}
	b := []byte(s)
	return b, detectContentType(b), nil
}

func detectContentType(body []byte) string {
	if json.Valid(body) {
		return contentTypeJSON
	}
	return contentTypeText
}

// Execute sends the request. 2xx is success; 5xx, 408, 425, 429 and
// network errors are retryable; other statuses are permanent.
func (a *httpAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	body, ctype, err := a.body(ex)
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("build body: %w", err)
	}
	reqCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, a.method, a.url, bytes.NewReader(body))
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("%s %s: build request: %w", a.method, a.target, err)
	}
	req.Header = a.header.Clone()
	if a.host != "" {
		req.Host = a.host
	}
	if !a.contentType && len(body) > 0 {
		req.Header.Set("Content-Type", ctype)
	}
	if a.eventHeader && base64.StdEncoding.EncodedLen(len(ex.Message.Description)) <= maxEventHeader {
		req.Header.Set(eventHeader, base64.StdEncoding.EncodeToString([]byte(ex.Message.Description)))
	}

	start := time.Now()
	resp, err := a.client.Do(req)
	if err != nil {
		details := map[string]string{"duration_ms": strconv.FormatInt(time.Since(start).Milliseconds(), 10)}
		res := sdk.Result{Details: details}
		switch {
		case ctx.Err() != nil:
			return res, fmt.Errorf("%s %s: canceled: %w", a.method, a.target, context.Cause(ctx))
		case errors.Is(reqCtx.Err(), context.DeadlineExceeded):
			details["timed_out"] = "true"
			return res, fmt.Errorf("%s %s: timed out after %s", a.method, a.target, a.timeout)
		}
		// url.Error repeats the whole URL, which may hold a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return res, fmt.Errorf("%s %s: %w", a.method, a.target, err)
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
	err = fmt.Errorf("%s %s: %s%s", a.method, a.target, statusText(resp.StatusCode), excerpt(head))
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

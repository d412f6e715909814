package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	fastb64 "github.com/segmentio/asm/base64"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkevent"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

const (
	// defaultTimeout bounds a request when `timeout` is not set, as in the
	// original postee.
	defaultTimeout = 5 * time.Second
	// maxBodyFile bounds the size of body-file.
	maxBodyFile = 10 << 20
	// maxEventHeader bounds the Postee-Event header (base64 characters);
	// a larger description is sent without it.
	maxEventHeader = 64 << 10
	// eventHeader carries the base64 description, as the original postee did.
	eventHeader = "Postee-Event"
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
	tmpl *sdkevent.Template
	// static and staticType are the body and its content type when tmpl has
	// no placeholders.
	static     string
	staticType string
	// lateFile is a body-file that was missing at Configure: it is read at
	// each run instead.
	lateFile string
	client   *http.Client
}

var (
	_ sdk.Action = (*httpAction)(nil)
	_ sdk.Closer = (*httpAction)(nil)
)

func newAction() sdk.Action { return &httpAction{} }

// ReadsEvent is whether a run reads the event: only a body with
// placeholders does (sdk.EventReader), or a body-file read at each run.
func (a *httpAction) ReadsEvent() bool {
	return a.lateFile != "" || (a.tmpl != nil && a.tmpl.HasPlaceholders())
}

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

	u, err := sdkhttp.ParseURL("url", s.URL)
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
		if _, err := os.Stat(s.BodyFile); errors.Is(err, fs.ErrNotExist) {
			// It may be put there later (a volume, a config map).
			sdk.Logger().Warn(fmt.Sprintf("%s does not exist on this machine yet; it is read when the action runs, and a run fails while it is missing", s.BodyFile),
				"action", cfg.Name, "key", "body-file")
			a.lateFile = s.BodyFile
			break
		}
		body, err := readBodyFile(s.BodyFile)
		add(err)
		a.setBody(body)
	}

	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.client = sdkhttp.NewClient()
	a.client.CheckRedirect = a.checkRedirect
	return nil
}

func (a *httpAction) setBody(body string) {
	t := sdkevent.Parse(body)
	a.tmpl = &t
	if !t.HasPlaceholders() {
		a.static = body
		a.staticType = sdkhttp.ContentType(body)
	}
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

// Close releases the action's idle connections.
func (a *httpAction) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// body returns the request body for ex and its content type. It is a
// string: the description or the rendered template is sent as it is, not
// copied into bytes first.
func (a *httpAction) body(ex *sdk.Execution) (string, string, error) {
	if a.lateFile != "" {
		if _, err := os.Stat(a.lateFile); errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("body-file: %s does not exist on this machine (no such file)", a.lateFile)
		}
		text, err := readBodyFile(a.lateFile)
		if err != nil {
			return "", "", err
		}
		s, _, err := sdkevent.Parse(text).Execute(ex.Event, sdkevent.NullText)
		if err != nil {
			return "", "", err
		}
		return s, sdkhttp.ContentType(s), nil
	}
	switch {
	case a.tmpl == nil:
		return ex.Message.Description, sdkhttp.ContentType(ex.Message.Description), nil
	case !a.tmpl.HasPlaceholders():
		return a.static, a.staticType, nil
	}
	s, _, err := a.tmpl.Execute(ex.Event, sdkevent.NullText)
	if err != nil {
		return "", "", err
	}
	return s, sdkhttp.ContentType(s), nil
}

// Execute sends the request. 2xx is success; 5xx, 408, 425, 429 and
// network errors are retryable; other statuses are permanent.
func (a *httpAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	body, ctype, err := a.body(ex)
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("build body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, a.method, a.url, strings.NewReader(body))
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
		req.Header[eventHeader] = []string{encodeEventHeader(ex.Message.Description)}
	}

	return sdkhttp.Call{Client: a.client, Describe: a.method + " " + a.target, Timeout: a.timeout, Note: a.redirectNote}.Do(ctx, req)
}

// encodeEventHeader is the Postee-Event header's value: desc in standard
// base64. It reads desc in place and returns its encoding without a copy:
// one allocation, the header's string. The encoder is segmentio/asm's
// (vector instructions where the CPU has them, the standard library's
// otherwise; the same output): the header is as long as the description,
// kilobytes per execution, and encoding it with encoding/base64 was ~5%
// of the plugin's CPU under load.
func encodeEventHeader(desc string) string {
	src := unsafe.Slice(unsafe.StringData(desc), len(desc))
	dst := make([]byte, fastb64.StdEncoding.EncodedLen(len(desc)))
	fastb64.StdEncoding.Encode(dst, src)
	// dst is not written again nor kept elsewhere: the string may share it.
	return unsafe.String(unsafe.SliceData(dst), len(dst))
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

const (
	// defaultSizeLimit is the size-limit when none (or 0) is set, as in the
	// original postee.
	defaultSizeLimit = 10000
	// defaultSourceType is sent when sourcetype is not set, as in the
	// original postee: Splunk extracts the JSON fields at search time.
	defaultSourceType = "_json"
	// eventPath is appended to a url that names no collector endpoint.
	eventPath = "/services/collector/event"
	// minUsefulLimit is the size-limit below which Configure warns, as the
	// original postee did below its default.
	minUsefulLimit = 1000
	// maxProgress bounds the executions whose sent posts are remembered.
	maxProgress = 4096
)

// settings are the keys of a splunk action's entry.
type settings struct {
	sdkhttp.Common
	URL             string        `json:"url"`
	Token           string        `json:"token"`
	SizeLimit       *sdk.ByteSize `json:"size-limit"`
	SourceType      *string       `json:"sourcetype"`
	Source          string        `json:"source"`
	Index           string        `json:"index"`
	Host            string        `json:"host"`
	SendDescription bool          `json:"send-description"`
}

// splunkAction sends events to one HEC endpoint. Its configuration is
// immutable after Configure; progress is guarded by mu.
type splunkAction struct {
	endpoint string // full collector URL
	target   string // scheme://host, for messages
	auth     string // Authorization header value
	limit    int
	meta     hecMeta
	sendDesc bool
	timeout  time.Duration
	client   *http.Client
	mu       sync.Mutex
	progress map[string]int // execution id -> posts HEC accepted
}

// hecMeta are the HEC metadata keys sent with every event.
type hecMeta struct {
	Host       string `json:"host,omitempty"`
	Source     string `json:"source,omitempty"`
	SourceType string `json:"sourcetype,omitempty"`
	Index      string `json:"index,omitempty"`
}

var (
	_ sdk.Action = (*splunkAction)(nil)
	_ sdk.Closer = (*splunkAction)(nil)
)

func newAction() sdk.Action { return &splunkAction{} }

// Configure validates the settings; it does no I/O.
func (a *splunkAction) Configure(_ context.Context, cfg sdk.Config) error {
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
		ep, err := endpoint(u)
		add(err)
		a.endpoint = ep
		a.target = sdkhttp.Redact(u)
	}

	token := strings.TrimSpace(s.Token)
	switch {
	case token == "":
		add(sdk.SettingsErrorf("token", "is required (the HEC token, e.g. token: $SPLUNK_TOKEN)"))
	case strings.ContainsAny(token, "\r\n\x00 "):
		add(sdk.SettingsErrorf("token", "must be a single word without spaces or control characters"))
	}
	a.auth = "Splunk " + token

	a.limit = defaultSizeLimit
	if s.SizeLimit != nil && *s.SizeLimit > 0 {
		a.limit = int(min(s.SizeLimit.Int64(), 1<<30))
	}
	if a.limit < minUsefulLimit {
		sdk.Logger().Warn("splunk: a small size-limit splits most events into many posts", "action", cfg.Name, "size-limit", a.limit)
	}

	a.meta = hecMeta{Host: s.Host, Source: s.Source, Index: s.Index, SourceType: defaultSourceType}
	if s.SourceType != nil {
		a.meta.SourceType = *s.SourceType
	}
	for key, v := range map[string]string{"host": s.Host, "source": s.Source, "index": s.Index, "sourcetype": a.meta.SourceType} {
		if strings.ContainsAny(v, "\r\n\x00") {
			add(sdk.SettingsErrorf(key, "must be on one line"))
		}
	}
	a.sendDesc = s.SendDescription
	a.timeout = s.TimeoutOr(sdkhttp.DefaultTimeout)

	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.client = s.Client()
	a.progress = map[string]int{}
	return nil
}

// endpoint returns the collector URL for the configured url: the url itself
// when its path already ends with /services/collector or
// /services/collector/event (the original postee posted to
// <url>/services/collector), otherwise the url's path with
// /services/collector/event appended.
func endpoint(u *url.URL) (string, error) {
	c := *u
	path := strings.TrimRight(c.Path, "/")
	switch {
	case strings.HasSuffix(path, "/services/collector"), strings.HasSuffix(path, "/services/collector/event"):
		c.Path = path
	case strings.HasSuffix(path, "/services/collector/raw"):
		return "", sdk.SettingsErrorf("url", "the raw endpoint /services/collector/raw does not take JSON events; give the HEC base URL (e.g. https://splunk.example.com:8088)")
	default:
		c.Path = path + eventPath
	}
	c.RawPath = ""
	c.Fragment = ""
	return c.String(), nil
}

// Close releases the action's idle connections.
func (a *splunkAction) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// Execute sends the event as one or more HEC events, in one or more posts.
// Posts HEC accepted are remembered per execution, so a retry after a
// failed post sends only the posts not yet accepted.
func (a *splunkAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	events, parts, err := a.events(ex)
	if err != nil {
		return sdk.Result{}, sdk.Permanent(err)
	}
	posts := pack(events, a.limit)
	done := a.sent(ex.ID)
	if done > len(posts) {
		done = 0
	}
	res := sdk.Result{Details: map[string]string{
		"events": strconv.Itoa(len(events)),
		"posts":  strconv.Itoa(len(posts)),
	}}
	if parts > 1 {
		res.Details["parts"] = strconv.Itoa(parts)
	}
	if done > 0 {
		res.Details["posts_already_sent"] = strconv.Itoa(done)
	}
	for i := done; i < len(posts); i++ {
		r, err := a.post(ctx, posts[i], i, len(posts))
		for k, v := range r.Details {
			res.Details[k] = v
		}
		if err != nil {
			a.setSent(ex.ID, i)
			res.Details["posts_sent"] = strconv.Itoa(i)
			return res, err
		}
	}
	a.forget(ex.ID)
	res.Details["posts_sent"] = strconv.Itoa(len(posts))
	res.Output = summary(parts, len(posts), a.target)
	return res, nil
}

// summary is the output of a successful execution.
func summary(parts, posts int, target string) string {
	s := "sent the event"
	if parts > 1 {
		s = fmt.Sprintf("sent the event in %d parts", parts)
	}
	if posts > 1 {
		return fmt.Sprintf("%s to Splunk HEC at %s in %d posts", s, target, posts)
	}
	return fmt.Sprintf("%s to Splunk HEC at %s", s, target)
}

// post sends one body; i and n number the post for messages.
func (a *splunkAction) post(ctx context.Context, body []byte, i, n int) (sdk.Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, bytes.NewReader(body))
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("POST %s: build request: %w", a.target, err)
	}
	req.Header.Set("Authorization", a.auth)
	req.Header.Set("Content-Type", sdkhttp.ContentTypeJSON)
	describe := "POST " + a.target
	if n > 1 {
		describe = fmt.Sprintf("POST %s (post %d of %d)", a.target, i+1, n)
	}
	res, err := sdkhttp.Call{Client: a.client, Describe: describe, Timeout: a.timeout}.Do(ctx, req)
	status, _ := strconv.Atoi(res.Details["status_code"])
	if status == 0 {
		return res, err // no answer: the call's own error
	}
	ans, parsed := parseAnswer(res.Output)
	if err == nil {
		if !parsed || ans.Code == nil || *ans.Code != 0 {
			return res, sdk.Permanentf("%s: status %d but not HEC's success answer {\"text\":\"Success\",\"code\":0}: %s (is url the HEC address?)", describe, status, sdkhttp.Snippet(res.Output))
		}
		return res, nil
	}
	if parsed && ans.Text != "" {
		res.Details["hec_code"] = strconv.Itoa(derefInt(ans.Code))
		msg := fmt.Sprintf("%s: status %d: %s", describe, status, ans.Text)
		if ans.Code != nil {
			msg += fmt.Sprintf(" (HEC code %d", *ans.Code)
			if ans.InvalidEvent != nil {
				msg += fmt.Sprintf(", invalid event number %d", *ans.InvalidEvent)
			}
			msg += ")"
		}
		if status == http.StatusRequestEntityTooLarge {
			msg += "; lower size-limit"
		}
		err = errors.New(msg)
		if !sdkhttp.RetryableStatus(status) {
			err = sdk.Permanent(err)
		}
	}
	return res, err
}

// answer is HEC's JSON answer.
type answer struct {
	Text         string `json:"text"`
	Code         *int   `json:"code"`
	InvalidEvent *int   `json:"invalid-event-number"`
}

func parseAnswer(s string) (answer, bool) {
	var ans answer
	if err := json.Unmarshal([]byte(s), &ans); err != nil {
		return ans, false
	}
	return ans, true
}

func derefInt(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

func (a *splunkAction) sent(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.progress[id]
}

func (a *splunkAction) setSent(id string, n int) {
	if n == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.progress) >= maxProgress {
		clear(a.progress)
	}
	a.progress[id] = n
}

func (a *splunkAction) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.progress, id)
}

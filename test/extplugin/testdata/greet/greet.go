// file: greet.go

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/postee-dev/postee/sdk"
)

// settings are the keys of a greet action's entry in the postee config. The
// json tags are the YAML keys; postee's own keys (name, type, enable, ...) are
// not passed to Decode.
type settings struct {
	Greeting string       `json:"greeting"`
	URL      string       `json:"url"`
	Timeout  sdk.Duration `json:"timeout"` // "10s", "1m", or seconds
}

// greet is one configured greet action. Configure sets it up once; Execute
// only reads it, so concurrent Execute calls are safe.
type greet struct {
	greeting string
	url      string
	client   *http.Client
}

// Configure checks and stores the action's settings. It does no I/O: it
// also runs for `postee validate`.
func (g *greet) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	// Decode is strict: an unknown key or a value of the wrong type is an
	// error naming the key, which postee reports with its config line.
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	if s.Greeting == "" {
		return sdk.SettingsErrorf("greeting", "is required (e.g. greeting: hello)")
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return sdk.SettingsErrorf("url", "must be an http:// or https:// URL, not %q", s.URL)
	}
	timeout := 10 * time.Second
	if s.Timeout > 0 {
		timeout = s.Timeout.D()
	}
	g.greeting, g.url = s.Greeting, u.String()
	g.client = &http.Client{Timeout: timeout}
	sdk.Logger().Debug("greet action configured", "action", cfg.Name, "url", u.Redacted())
	return nil
}

// Greeting is the JSON body POSTed for each event.
type Greeting struct {
	Text        string `json:"text"`
	Route       string `json:"route"`
	ExecutionID string `json:"execution_id"`
	Message     string `json:"message"`
}

// Execute greets the event's image. Errors marked sdk.Permanent tell postee
// that trying again cannot help; other errors may be retried.
func (g *greet) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	var event struct {
		Image string `json:"image"`
	}
	if err := json.Unmarshal(ex.Event, &event); err != nil {
		return sdk.Result{}, sdk.Permanentf("unexpected event: %w", err)
	}
	if event.Image == "" {
		event.Image = "unknown image"
	}
	body, err := json.Marshal(Greeting{
		Text:        fmt.Sprintf("%s, %s!", g.greeting, event.Image),
		Route:       ex.Route,
		ExecutionID: ex.ID,
		Message:     ex.Message.Description, // the route's template, rendered
	})
	if err != nil {
		return sdk.Result{}, sdk.Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url, bytes.NewReader(body))
	if err != nil {
		return sdk.Result{}, sdk.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	// The execution id is the same on every attempt: the receiver can use it
	// to drop a greeting it already has.
	req.Header.Set("Idempotency-Key", ex.ID)
	resp, err := g.client.Do(req)
	if err != nil {
		return sdk.Result{}, err // a network problem: worth another try
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	res := sdk.Result{
		Output:  string(reply),
		Details: map[string]string{"status": strconv.Itoa(resp.StatusCode)},
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return res, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return res, fmt.Errorf("greeting not taken: %s", resp.Status)
	default: // the receiver refuses this greeting: sending it again will not help
		return res, sdk.Permanentf("greeting rejected: %s", resp.Status)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

// bomPath is the Dependency-Track endpoint that takes a BOM, relative to
// the configured url (whose path is kept).
const bomPath = "api/v1/bom"

// settings are the keys of a dependencytrack action's entry.
type settings struct {
	sdkhttp.Common
	URL    string `json:"url"`
	APIKey string `json:"dependency-track-api-key"`
}

// action uploads one BOM per execution. It is immutable after Configure, so
// executions may run concurrently.
type action struct {
	endpoint string // url + /api/v1/bom
	target   string // scheme://host, for messages
	apiKey   string
	timeout  time.Duration
	client   *http.Client
}

var (
	_ sdk.Action = (*action)(nil)
	_ sdk.Closer = (*action)(nil)
)

func newAction() sdk.Action { return &action{} }

// Configure validates the settings; it does no I/O.
func (a *action) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	var errs []error
	u, err := sdkhttp.ParseURL("url", s.URL)
	if err != nil {
		errs = append(errs, err)
	} else {
		a.endpoint = endpoint(u, bomPath)
		a.target = sdkhttp.Redact(u)
	}
	a.apiKey = strings.TrimSpace(s.APIKey)
	if a.apiKey == "" {
		errs = append(errs, sdk.SettingsErrorf("dependency-track-api-key",
			"is required (an API key of a Dependency-Track team with the BOM_UPLOAD and PROJECT_CREATION_UPLOAD permissions)"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.timeout = s.TimeoutOr(sdkhttp.DefaultTimeout)
	a.client = s.Client()
	return nil
}

// endpoint appends path to base, keeping base's path (a Dependency-Track
// behind a reverse proxy at https://host/dtrack gets /dtrack/api/v1/bom).
func endpoint(base *url.URL, path string) string {
	u := *base
	u.Path = strings.TrimRight(u.Path, "/") + "/" + path
	u.RawPath = ""
	u.Fragment = ""
	return u.String()
}

// Close releases the action's idle connections.
func (a *action) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// bomUpload is the body of PUT /api/v1/bom.
type bomUpload struct {
	ProjectName    string `json:"projectName"`
	ProjectVersion string `json:"projectVersion"`
	AutoCreate     bool   `json:"autoCreate"`
	BOM            string `json:"bom"` // base64
}

// Execute uploads the description (a CycloneDX BOM) into the project named
// after the report's image. 2xx is success; 429, 5xx and network errors are
// retryable; other statuses are permanent.
func (a *action) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	bom, err := encodeBOM(ex.Message.Description)
	if err != nil {
		return sdk.Result{}, sdk.Permanent(err)
	}
	name, version, err := project(ex.Message.Title, ex.Message.Description, ex.Event)
	if err != nil {
		return sdk.Result{}, sdk.Permanent(err)
	}
	body, err := json.Marshal(bomUpload{ProjectName: name, ProjectVersion: version, AutoCreate: true, BOM: bom})
	if err != nil {
		return sdk.Result{}, sdk.Permanent(err)
	}
	describe := "PUT " + a.target
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.endpoint, bytes.NewReader(body))
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("%s: build request: %w", describe, sdkhttp.StripURL(err))
	}
	req.Header.Set("Content-Type", sdkhttp.ContentTypeJSON)
	req.Header.Set("Accept", sdkhttp.ContentTypeJSON)
	req.Header.Set("X-Api-Key", a.apiKey)

	res, err := sdkhttp.Call{Client: a.client, Describe: describe, Timeout: a.timeout}.Do(ctx, req)
	res.Details["project_name"] = name
	res.Details["project_version"] = version
	if err != nil {
		return res, err
	}
	// Dependency-Track answers {"token": "<uuid>"}: the id of the BOM's
	// processing, which /api/v1/bom/token/<token> reports on.
	var answer struct {
		Token string `json:"token"`
	}
	if json.Unmarshal([]byte(res.Output), &answer) != nil || answer.Token == "" {
		return res, sdk.Permanentf("%s: the BOM was accepted (status %s) but the answer has no processing token: %s",
			describe, res.Details["status_code"], short(res.Output))
	}
	res.Details["token"] = answer.Token
	res.Output = fmt.Sprintf("BOM uploaded to project %s version %s (token %s)", name, version, answer.Token)
	return res, nil
}

// encodeBOM checks that desc is a BOM (a JSON object, compacted, or an XML
// document, sent as it is) and returns it base64-encoded.
func encodeBOM(desc string) (string, error) {
	trimmed := strings.TrimSpace(desc)
	switch {
	case trimmed == "":
		return "", errors.New("the message description is empty: it must be a CycloneDX BOM (use the postee.trivyoperator.dependencytrack or postee.vuls.cyclondx template)")
	case strings.HasPrefix(trimmed, "<"):
		return base64.StdEncoding.EncodeToString([]byte(trimmed)), nil
	case !strings.HasPrefix(trimmed, "{"):
		return "", fmt.Errorf("the message description is not a CycloneDX BOM (a JSON object or XML document) but starts with %q; use the postee.trivyoperator.dependencytrack or postee.vuls.cyclondx template", short(trimmed))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(trimmed)); err != nil {
		return "", fmt.Errorf("the message description is not valid JSON: %v", err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// short returns the start of s, for an error message.
func short(s string) string {
	const max = 40
	s = strings.TrimSpace(s)
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

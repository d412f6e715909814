package main

import (
	"bytes"
	"context"
	"crypto/sha256"
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
	// defaultSizeLimit bounds the JSON body of one request. Teams refuses
	// messages over about 28 KB, counted on its own envelope of the
	// message; the default keeps a margin under that.
	defaultSizeLimit = 24 << 10
	// minSizeLimit is the smallest size-limit: below it, a title and a
	// little text would not fit.
	minSizeLimit = 2 << 10
	// maxSizeLimit keeps size-limit a limit (Teams itself takes ~28 KB).
	maxSizeLimit = 1 << 20
	// defaultMaxParts bounds the messages one event becomes.
	defaultMaxParts = 10
	// maxMaxParts is the largest max-parts ("part 99/99" is reserved in
	// titles).
	maxMaxParts = 99
	// maxProgress bounds the executions whose delivered parts are
	// remembered for a retry.
	maxProgress = 4096
)

// Formats of the request body.
const (
	formatAuto      = "auto"
	formatConnector = "connector"
	formatWorkflow  = "workflow"
)

// settings are the keys of a teams action's entry.
type settings struct {
	sdkhttp.Common
	URL       string        `json:"url"`
	Format    string        `json:"format"`
	SizeLimit *sdk.ByteSize `json:"size-limit"`
	MaxParts  *int          `json:"max-parts"`
}

// teamsAction posts every message to one webhook. Its configuration is
// immutable after Configure; the progress of split messages is guarded by
// mu, so executions may run concurrently.
type teamsAction struct {
	url       string
	target    string // scheme://host: the rest of a webhook URL is a secret
	format    string // formatConnector or formatWorkflow
	sizeLimit int
	maxParts  int
	timeout   time.Duration
	client    *http.Client

	mu sync.Mutex
	// progress holds, per execution id, how many parts of a split message
	// were delivered before a failure, so that a retry sends the rest.
	progress map[string]progress
}

// progress is what a failed execution delivered: its first sent parts of
// the message whose parts hash to sum.
type progress struct {
	sum  [32]byte
	sent int
}

var (
	_ sdk.Action = (*teamsAction)(nil)
	_ sdk.Closer = (*teamsAction)(nil)
)

func newAction() sdk.Action { return &teamsAction{} }

// ReadsEvent is false: the action sends the rendered message only
// (sdk.EventReader), so postee leaves the event out of its executions.
func (a *teamsAction) ReadsEvent() bool { return false }

// Configure validates the settings; it does no I/O.
func (a *teamsAction) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	var errs []error
	u, err := sdkhttp.ParseURL("url", s.URL)
	if err != nil {
		errs = append(errs, err)
	}
	format := strings.ToLower(strings.TrimSpace(s.Format))
	switch format {
	case "", formatAuto:
		format = formatAuto
	case formatConnector, formatWorkflow:
	default:
		errs = append(errs, sdk.SettingsErrorf("format", "%q is not a format: use auto, connector or workflow", s.Format))
	}
	a.sizeLimit = defaultSizeLimit
	if s.SizeLimit != nil {
		n := s.SizeLimit.Int64()
		if n < minSizeLimit || n > maxSizeLimit {
			errs = append(errs, sdk.SettingsErrorf("size-limit", "must be between %d (2KB) and %d (1MB) bytes, not %d", minSizeLimit, maxSizeLimit, n))
		}
		a.sizeLimit = int(n)
	}
	a.maxParts = defaultMaxParts
	if s.MaxParts != nil {
		if *s.MaxParts < 1 || *s.MaxParts > maxMaxParts {
			errs = append(errs, sdk.SettingsErrorf("max-parts", "must be between 1 and %d, not %d", maxMaxParts, *s.MaxParts))
		}
		a.maxParts = *s.MaxParts
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.url = strings.TrimSpace(s.URL)
	a.target = sdkhttp.Redact(u)
	a.format = format
	if format == formatAuto {
		a.format = formatFor(u.Hostname())
	}
	a.timeout = s.TimeoutOr(sdkhttp.DefaultTimeout)
	a.client = s.Client()
	a.progress = map[string]progress{}
	return nil
}

// workflowHosts are the domains of Workflows (Power Automate, Logic Apps)
// webhook URLs; every other host is taken for an Office 365 connector.
var workflowHosts = []string{
	"logic.azure.com",   // https://prod-NN.<region>.logic.azure.com/workflows/...
	"logic.azure.us",    // US government clouds
	"powerplatform.com", // https://<env>.environment.api.powerplatform.com/...
	"powerplatform.us",  // US government clouds
	"powerautomate.com", // Power Automate
	"powerautomate.us",  // US government clouds
	"logic.azure.cn",    // Azure China
	"powerplatform.partner.microsoftonline.cn",
}

// formatFor returns the format for a webhook host.
func formatFor(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, d := range workflowHosts {
		if host == d || strings.HasSuffix(host, "."+d) {
			return formatWorkflow
		}
	}
	return formatConnector
}

// Close releases the action's idle connections.
func (a *teamsAction) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// Execute posts the message, in several parts when it is over size-limit.
// A part that fails ends the execution; a retry of the same execution
// resumes with that part.
func (a *teamsAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	var p built
	if a.format == formatWorkflow {
		p = buildWorkflow(ex.Message, a.sizeLimit, a.maxParts)
	} else {
		p = buildConnector(ex.Message, a.sizeLimit, a.maxParts)
	}
	sum := hashParts(p.bodies)
	start := a.resume(ex.ID, sum, len(p.bodies))

	details := map[string]string{
		"format": a.format,
		"parts":  strconv.Itoa(len(p.bodies)),
	}
	if p.omitted > 0 {
		details["parts_omitted"] = strconv.Itoa(p.omitted)
	}
	if start > 0 {
		details["resumed_at_part"] = strconv.Itoa(start + 1)
	}
	var last sdk.Result
	for i := start; i < len(p.bodies); i++ {
		res, err := a.post(ctx, p.bodies[i])
		last = res
		for k, v := range res.Details {
			details[k] = v
		}
		if err != nil {
			details["parts_sent"] = strconv.Itoa(i)
			if i > 0 {
				a.remember(ex.ID, sum, i)
			}
			if len(p.bodies) > 1 {
				err = fmt.Errorf("part %d of %d: %w", i+1, len(p.bodies), err)
			}
			return sdk.Result{Output: res.Output, Details: details}, err
		}
	}
	a.forget(ex.ID)
	details["parts_sent"] = strconv.Itoa(len(p.bodies))
	out := fmt.Sprintf("posted %d message(s) to %s (%s)", len(p.bodies), a.target, a.format)
	if ans := strings.TrimSpace(last.Output); ans != "" {
		out += "; answer: " + ans
	}
	return sdk.Result{Output: out, Details: details}, nil
}

// post sends one request body and checks the answer.
func (a *teamsAction) post(ctx context.Context, body []byte) (sdk.Result, error) {
	describe := "POST " + a.target
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return sdk.Result{}, sdk.Permanentf("%s: build request: %w", describe, sdkhttp.StripURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := sdkhttp.Call{Client: a.client, Describe: describe, Timeout: a.timeout, Note: a.note}.Do(ctx, req)
	if err != nil {
		return res, err
	}
	return res, a.checkAnswer(describe, res)
}

// note adds a hint to the error of some answers.
func (a *teamsAction) note(resp *http.Response) string {
	switch resp.StatusCode {
	case http.StatusRequestEntityTooLarge:
		return fmt.Sprintf(" (the message part was over the size Teams takes; lower size-limit, now %d bytes)", a.sizeLimit)
	case http.StatusNotFound, http.StatusGone:
		return " (the webhook does not exist (any more): check url)"
	}
	return ""
}

// checkAnswer judges a 2xx answer. A Workflows webhook answers 202 with an
// empty body; any 2xx is success there. The connector answers 200 "1";
// an empty body is success too. Any other body of a 2xx is how the
// connector reported failures ("Webhook message delivery failed with error:
// Microsoft Teams endpoint returned HTTP error 429 ..."): an error,
// retryable when it names a retryable status, else permanent.
func (a *teamsAction) checkAnswer(describe string, res sdk.Result) error {
	if a.format == formatWorkflow {
		return nil
	}
	body := strings.TrimSpace(res.Output)
	if body == "" || body == "1" {
		return nil
	}
	excerpt := body
	if len(excerpt) > sdkhttp.MaxErrorBody {
		n := sdkhttp.MaxErrorBody
		for n > 0 && excerpt[n]&0xC0 == 0x80 {
			n--
		}
		excerpt = excerpt[:n] + "…"
	}
	err := fmt.Errorf("%s: status %s but the connector did not answer \"1\": %s", describe, res.Details["status_code"], excerpt)
	if code := embeddedStatus(body); code != 0 {
		res.Details["teams_status_code"] = strconv.Itoa(code)
		if sdkhttp.RetryableStatus(code) {
			return err
		}
	}
	return sdk.Permanent(err)
}

// embeddedStatus finds the status in the connector's "... returned HTTP
// error 429 ..." text, 0 when there is none.
func embeddedStatus(body string) int {
	lower := strings.ToLower(body)
	i := strings.Index(lower, "http error ")
	if i < 0 {
		return 0
	}
	rest := lower[i+len("http error "):]
	j := 0
	for j < len(rest) && j < 3 && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j != 3 {
		return 0
	}
	n, _ := strconv.Atoi(rest[:j])
	return n
}

func hashParts(bodies [][]byte) [32]byte {
	h := sha256.New()
	for _, b := range bodies {
		h.Write([]byte(strconv.Itoa(len(b)) + ":"))
		h.Write(b)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// resume returns the first part to send for execution id: after the parts
// an earlier attempt delivered, when the message is the same.
func (a *teamsAction) resume(id string, sum [32]byte, parts int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.progress[id]
	if !ok || p.sum != sum || p.sent >= parts {
		return 0
	}
	return p.sent
}

func (a *teamsAction) remember(id string, sum [32]byte, sent int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.progress[id]; !ok && len(a.progress) >= maxProgress {
		for k := range a.progress { // drop an arbitrary entry
			delete(a.progress, k)
			break
		}
	}
	a.progress[id] = progress{sum: sum, sent: sent}
}

func (a *teamsAction) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.progress, id)
}

// safeURL returns u when it is an absolute http(s) URL, else "".
func safeURL(u string) string {
	u = strings.TrimSpace(u)
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || (!strings.EqualFold(p.Scheme, "http") && !strings.EqualFold(p.Scheme, "https")) {
		return ""
	}
	return u
}

// messageLinks returns the http(s) URLs of the message's url (one per
// line, as aggregated messages carry them), at most max.
func messageLinks(raw string, max int) []string {
	var out []string
	for _, line := range strings.Split(raw, "\n") {
		if u := safeURL(line); u != "" && len(out) < max {
			out = append(out, u)
		}
	}
	return out
}

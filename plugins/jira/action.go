package main

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

const (
	// metadataTTL is how long fetched metadata and user lookups are used.
	metadataTTL = 10 * time.Minute
	// maxUsers bounds the user lookup cache.
	maxUsers = 1000
	// passwordEnv is read when password is empty, as the original postee did.
	passwordEnv = "JIRA_PASSWORD"
)

// jira creates one Jira issue per execution. The settings are immutable
// after Configure; the metadata and user caches are guarded, so executions
// may run concurrently.
type jira struct {
	name      string
	base      *url.URL // with a trailing slash
	target    string   // scheme://host, for messages
	cloudHost bool
	auth      string // Authorization header value
	user      string
	timeout   time.Duration
	client    *http.Client

	project         string
	issueType       string
	priority        string
	assignee        []string
	labels          []string
	fixVersions     []string
	affectsVersions []string
	sprint          string
	board           string
	unknowns        unknowns
	dedup           bool

	now func() time.Time

	// metaLock (a one-slot channel, so that waiting can be canceled)
	// guards meta.
	metaLock chan struct{}
	meta     *metadata

	usersMu sync.Mutex
	users   map[string]*userEntry
}

var (
	_ sdk.Action = (*jira)(nil)
	_ sdk.Closer = (*jira)(nil)
)

func newAction() sdk.Action { return newJira(time.Now) }

func newJira(now func() time.Time) *jira {
	return &jira{now: now, metaLock: make(chan struct{}, 1), users: map[string]*userEntry{}}
}

// Configure validates the settings; it does no network I/O.
func (a *jira) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	a.name = cfg.Name
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	u, err := sdkhttp.ParseURL("url", s.URL)
	add(err)
	if u != nil {
		if u.User != nil {
			add(sdk.SettingsErrorf("url", "must not hold credentials; use user and password or token"))
		}
		base := *u
		base.User, base.RawQuery, base.Fragment, base.RawPath = nil, "", "", ""
		if !strings.HasSuffix(base.Path, "/") {
			base.Path += "/"
		}
		a.base = &base
		a.target = sdkhttp.Redact(u)
		a.cloudHost = strings.HasSuffix(strings.ToLower(u.Hostname()), ".atlassian.net")
	}

	a.user = strings.TrimSpace(s.User)
	password := s.Password
	if password == "" {
		password = os.Getenv(passwordEnv)
	}
	token := strings.TrimSpace(s.Token)
	switch {
	case token != "" && !a.cloudHost:
		a.auth = "Bearer " + token
	case token != "" && password == "":
		add(sdk.SettingsErrorf("token", "Jira Cloud does not take personal access tokens: put the API token in password, with the account's e-mail as user"))
	default:
		if a.user == "" {
			add(sdk.SettingsErrorf("user", "is required (on Jira Cloud the account's e-mail), unless token is set"))
		}
		if password == "" {
			add(sdk.SettingsErrorf("password", "is required when token is not set (on Jira Cloud: an API token); the %s environment variable is read when it is empty", passwordEnv))
		}
		a.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(a.user+":"+password))
	}

	a.project = strings.ToUpper(strings.TrimSpace(s.ProjectKey))
	switch {
	case a.project == "":
		add(sdk.SettingsErrorf("project-key", "is required (e.g. project-key: SEC)"))
	case strings.ContainsAny(a.project, " \t\r\n/?#%\\"):
		add(sdk.SettingsErrorf("project-key", "%q is not a Jira project key", s.ProjectKey))
	}
	a.issueType = strings.TrimSpace(string(s.IssueType))
	a.priority = strings.TrimSpace(string(s.Priority))
	a.assignee = trimmed(s.Assignee)
	a.labels = trimmed(s.Labels)
	for _, l := range a.labels {
		if strings.ContainsAny(l, " \t\r\n") {
			add(sdk.SettingsErrorf("labels", "%q: Jira labels cannot contain spaces", l))
		}
		if len(l) > 255 {
			add(sdk.SettingsErrorf("labels", "a label is longer than Jira's 255 characters"))
		}
	}
	a.fixVersions = trimmed(s.FixVersions)
	a.affectsVersions = trimmed(s.AffectsVersions)
	a.sprint = strings.TrimSpace(string(s.Sprint))
	a.board = strings.TrimSpace(string(s.Board))
	a.unknowns = s.Unknowns
	a.dedup = s.Dedup == nil || *s.Dedup

	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.timeout = s.TimeoutOr(sdkhttp.DefaultTimeout)
	a.client = s.Client()
	// A redirect would lose the POST (and its Authorization header on
	// another host): report it instead.
	a.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return nil
}

// Close releases idle connections.
func (a *jira) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// Execute creates the issue. Jira's 400 and other 4xx answers are
// permanent; network errors, 429 and 5xx are retried.
func (a *jira) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	start := time.Now()
	res := sdk.Result{Details: map[string]string{}}
	err := a.execute(ctx, ex, &res)
	res.Details["duration_ms"] = since(start)
	if err != nil {
		addErrorDetails(res.Details, err)
		return res, classify(err)
	}
	return res, nil
}

func (a *jira) execute(ctx context.Context, ex *sdk.Execution, res *sdk.Result) error {
	d := res.Details
	for try := 0; ; try++ {
		m, fresh, err := a.metadata(ctx, try > 0)
		if err != nil {
			return err
		}
		if m.err != nil {
			return m.err
		}
		fields, label, err := a.issueFields(ctx, ex, m, d)
		if err != nil {
			return err
		}
		if label != "" && ex.Attempt > 1 {
			found, err := a.search(ctx, m, label)
			if err != nil {
				return err
			}
			if found != nil {
				a.done(res, found, http.StatusOK)
				d["deduplicated"] = "true"
				res.Output = "found " + found.Key + " created by an earlier attempt: " + a.browse(found.Key)
				return nil
			}
		}
		var created issueRef
		status, err := a.call(ctx, request{method: http.MethodPost, path: "rest/api/2/issue",
			body: map[string]any{"fields": fields}, names: m.names()}, &created)
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusBadRequest && !fresh && try == 0 {
			// The cached metadata may be stale (a closed sprint, a changed
			// screen): fetch them again and try once more.
			sdk.Logger().Info("jira: issue refused with cached metadata; refreshing them", "action", a.name, "error", err.Error())
			continue
		}
		if err != nil {
			return err
		}
		if created.Key == "" {
			return errors.New("POST " + a.target + " rest/api/2/issue: the answer has no issue key")
		}
		a.done(res, &created, status)
		res.Output = "created " + created.Key + ": " + a.browse(created.Key)
		return nil
	}
}

// issueRef is Jira's answer to a create, and an entry of a search.
type issueRef struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Self string `json:"self"`
}

func (a *jira) done(res *sdk.Result, ref *issueRef, status int) {
	d := res.Details
	d["issue_key"] = ref.Key
	d["issue_id"] = ref.ID
	d["issue_url"] = a.browse(ref.Key)
	d["status_code"] = itoa(status)
}

// browse is the issue's page.
func (a *jira) browse(key string) string {
	u := *a.base
	u.Path += "browse/" + key
	return u.String()
}

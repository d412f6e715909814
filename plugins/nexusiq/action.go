package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

const (
	// defaultTimeout bounds one request when `timeout` is not set: 120 s,
	// as the original postee's Nexus IQ action (a scan submission of a
	// large SBOM can take a while).
	defaultTimeout = 120 * time.Second
	// source is the scan source name under which the SBOM is submitted.
	source = "postee"
)

// settings are the keys of a nexusIq action's entry.
type settings struct {
	sdkhttp.Common
	URL            string `json:"url"`
	User           string `json:"user"`
	Password       string `json:"password"`
	OrganizationID string `json:"organization-id"`
}

// action submits one SBOM per execution. Its settings are immutable after
// Configure; the cache of application ids is guarded by mu, so executions
// may run concurrently.
type action struct {
	base     *url.URL
	target   string // scheme://host, for messages
	user     string
	password string
	orgID    string
	timeout  time.Duration
	client   *http.Client

	mu   sync.Mutex
	apps map[string]*app // by public id
}

// app is the cached internal id of one application. Its mutex is held
// while the id is looked up (or the application created), so that
// concurrent executions for the same application look it up once and never
// create it twice.
type app struct {
	mu sync.Mutex
	id string // "" until known
}

var (
	_ sdk.Action      = (*action)(nil)
	_ sdk.Closer      = (*action)(nil)
	_ sdk.EventReader = (*action)(nil)
)

func newAction() sdk.Action { return &action{} }

// ReadsEvent is false: the action sends the rendered message only
// (sdk.EventReader), so postee leaves the event out of its executions.
func (a *action) ReadsEvent() bool { return false }

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
		a.base = u
		a.target = sdkhttp.Redact(u)
	}
	if strings.TrimSpace(s.User) == "" {
		errs = append(errs, sdk.SettingsErrorf("user", "is required (a Nexus IQ user, or the code of a user token)"))
	}
	if s.Password == "" {
		errs = append(errs, sdk.SettingsErrorf("password", "is required (the user's password, or the passcode of a user token)"))
	}
	a.orgID = strings.TrimSpace(s.OrganizationID)
	if a.orgID == "" {
		errs = append(errs, sdk.SettingsErrorf("organization-id", "is required: the internal id of the Nexus IQ organization new applications are created in (GET /api/v2/organizations lists them)"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.user, a.password = strings.TrimSpace(s.User), s.Password
	a.timeout = s.TimeoutOr(defaultTimeout)
	a.client = s.Client()
	a.apps = map[string]*app{}
	return nil
}

// Execute finds (or creates) the application named after the message
// title and submits the description, a CycloneDX SBOM, for evaluation.
func (a *action) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	ctype, err := bomType(ex.Message.Description)
	if err != nil {
		return sdk.Result{}, sdk.Permanent(err)
	}
	publicID := PublicID(ex.Message.Title)
	if publicID == "" {
		return sdk.Result{}, sdk.Permanentf("the message title is empty: it names the Nexus IQ application (use the postee.vuls.cyclondx template, whose title is the image)")
	}
	res := sdk.Result{Details: map[string]string{"public_id": publicID}}
	for try := 0; ; try++ {
		id, cached, err := a.applicationID(ctx, publicID, res.Details)
		if err != nil {
			return res, err
		}
		res.Details["application_id"] = id
		statusURL, err := a.submit(ctx, id, publicID, ctype, ex.Message.Description, res.Details)
		if statusOf(err) == http.StatusNotFound {
			// The application was deleted since it was looked up.
			a.forget(publicID, id)
			if cached && try == 0 {
				continue
			}
		}
		if err != nil {
			return res, err
		}
		if statusURL != "" {
			res.Details["status_url"] = statusURL
		}
		res.Output = fmt.Sprintf("SBOM submitted to Nexus IQ application %s (id %s) for evaluation", publicID, id)
		if statusURL != "" {
			res.Output += "; status: " + statusURL
		}
		return res, nil
	}
}

// bomType returns the content type of the SBOM in desc: XML (the original
// postee's CycloneDX template) or JSON (the bundled postee.vuls.cyclondx).
func bomType(desc string) (string, error) {
	d := strings.TrimSpace(desc)
	switch {
	case d == "":
		return "", errors.New("the message description is empty: it must be a CycloneDX SBOM (use the postee.vuls.cyclondx template)")
	case strings.HasPrefix(d, "<"):
		return "application/xml", nil
	case isJSONObject([]byte(d)):
		return sdkhttp.ContentTypeJSON, nil
	}
	return "", errors.New("the message description is not a CycloneDX SBOM (a JSON object or an XML document); use the postee.vuls.cyclondx template")
}

// PublicID turns a title (an image reference) into a Nexus IQ application
// public id: every character other than a letter, digit, '_' or '-' becomes
// '_' (the original postee replaced '.', ':' and '/', so the ids of images
// it created stay the same).
func PublicID(title string) string {
	t := strings.TrimSpace(title)
	var b strings.Builder
	for _, r := range t {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// applicationID returns the internal id of the application publicID, from
// the cache or looked up, creating the application when Nexus IQ has none.
// cached reports whether it came from the cache.
func (a *action) applicationID(ctx context.Context, publicID string, details map[string]string) (id string, cached bool, err error) {
	a.mu.Lock()
	e := a.apps[publicID]
	if e == nil {
		e = &app{}
		a.apps[publicID] = e
	}
	a.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.id != "" {
		return e.id, true, nil
	}
	id, err = a.find(ctx, publicID, details)
	if err != nil {
		return "", false, err
	}
	if id == "" {
		id, err = a.create(ctx, publicID, details)
		if s := statusOf(err); s >= 400 && s < 500 {
			// Created meanwhile by someone else (another postee)? Look
			// again; if that does not find it, the creation's error
			// stands, with its details.
			again := map[string]string{}
			if found, ferr := a.find(ctx, publicID, again); ferr == nil && found != "" {
				maps.Copy(details, again)
				e.id = found
				return found, false, nil
			}
		}
		if err != nil {
			return "", false, err
		}
		details["application_created"] = "true"
	}
	e.id = id
	return id, false, nil
}

// forget drops the cached id of publicID if it is still id.
func (a *action) forget(publicID, id string) {
	a.mu.Lock()
	e := a.apps[publicID]
	a.mu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	if e.id == id {
		e.id = ""
	}
	e.mu.Unlock()
}

// application is an application as Nexus IQ's API returns it.
type application struct {
	ID       string `json:"id"`
	PublicID string `json:"publicId"`
}

// find looks the application up by its public id:
// GET /api/v2/applications?publicId=... answers {"applications": [...]}.
// It returns "" when there is none.
func (a *action) find(ctx context.Context, publicID string, details map[string]string) (string, error) {
	what := "look up application " + publicID
	var answer struct {
		Applications *[]application `json:"applications"`
	}
	err := a.call(ctx, what, http.MethodGet, "api/v2/applications", url.Values{"publicId": {publicID}}, "", nil, &answer, details)
	if err != nil {
		return "", err
	}
	if answer.Applications == nil {
		return "", sdk.Permanentf("%s: unexpected answer: no applications list", what)
	}
	for _, ap := range *answer.Applications {
		if strings.EqualFold(ap.PublicID, publicID) {
			if ap.ID == "" {
				return "", sdk.Permanentf("%s: unexpected answer: the application has no id", what)
			}
			return ap.ID, nil
		}
	}
	return "", nil
}

// create creates the application in the configured organization:
// POST /api/v2/applications with {"publicId", "name", "organizationId"}
// answers the application.
func (a *action) create(ctx context.Context, publicID string, details map[string]string) (string, error) {
	what := "create application " + publicID
	body, err := jsonBody(map[string]string{"publicId": publicID, "name": publicID, "organizationId": a.orgID})
	if err != nil {
		return "", sdk.Permanent(err)
	}
	var created application
	if err := a.call(ctx, what, http.MethodPost, "api/v2/applications", nil, sdkhttp.ContentTypeJSON, body, &created, details); err != nil {
		return "", err
	}
	if created.ID == "" {
		return "", sdk.Permanentf("%s: unexpected answer: no application id", what)
	}
	return created.ID, nil
}

// submit posts the SBOM for evaluation:
// POST /api/v2/scan/applications/<id>/sources/postee answers
// {"statusUrl": "api/v2/scan/applications/<id>/status/<scan id>"}.
func (a *action) submit(ctx context.Context, id, publicID, ctype, bom string, details map[string]string) (string, error) {
	var answer struct {
		StatusURL string `json:"statusUrl"`
	}
	what := "submit SBOM of application " + publicID
	path := "api/v2/scan/applications/" + url.PathEscape(id) + "/sources/" + source
	if err := a.call(ctx, what, http.MethodPost, path, nil, ctype, []byte(bom), &answer, details); err != nil {
		return "", err
	}
	return answer.StatusURL, nil
}

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dockerclient "github.com/moby/moby/client"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/internal/testdocker"
	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/sdk"
)

// Secrets of the platform test: each must reach its service and never show
// in postee's log or in an execution's outcome.
const (
	jiraPAT       = "jira-pat-NjQ1MzIxOTg3NjU0OnNlY3JldA"
	snowPassword  = "snow-p4ss-0f9e8d7c"
	dtrackAPIKey  = "odt_dtrackKEY0123456789abcdefABCDEF"
	iqPassword    = "iq-passc0de-5a4b3c2d"
	awsKeyID      = "AKIDPOSTEEE2E0000001"
	awsSecret     = "wJalrXUtnFEMI/K7MDENG/e2eSECRETKEY000000"
	awsSession    = "FwoGZXIvYXdzE2eSESSIONTOKENs3cr3t"
	awsRegion     = "eu-west-1"
	kubeToken     = "kube-e2e-t0ken-9876543210"
	iqOrgID       = "222de33e8005408a844c12eab952c9b0"
	snowUser      = "postee.integration"
	trivyImage    = "registry.example.com/team/app:1.2.3"
	operatorNS    = "prod"
	operatorName  = "web"
	asffAccountID = "123456789012"
)

// platformRequest is a request a local service received.
type platformRequest struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   string
}

// platform is a local server that answers as one service does (answer
// runs with the server's lock held, so it may keep state) and records
// every request.
type platform struct {
	name   string
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []platformRequest
	answer func(w http.ResponseWriter, r platformRequest)
}

func newPlatform(t *testing.T, name string, tls bool, answer func(http.ResponseWriter, platformRequest)) *platform {
	t.Helper()
	p := &platform{name: name, answer: answer}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := platformRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: string(b)}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.reqs = append(p.reqs, req)
		p.answer(w, req)
	})
	if tls {
		p.srv = httptest.NewTLSServer(h)
	} else {
		p.srv = httptest.NewServer(h)
	}
	t.Cleanup(p.srv.Close)
	return p
}

func (p *platform) requests() []platformRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]platformRequest(nil), p.reqs...)
}

// matching returns the requests with method whose path matches path (a
// regular expression, anchored).
func (p *platform) matching(method, path string) []platformRequest {
	re := regexp.MustCompile("^" + path + "$")
	var out []platformRequest
	for _, r := range p.requests() {
		if r.Method == method && re.MatchString(r.Path) {
			out = append(out, r)
		}
	}
	return out
}

func answerJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// renderMessage is the message a bundled template makes of an event, as
// postee renders it for a route.
func renderMessage(t *testing.T, pkg string, raw []byte) sdk.Message {
	t.Helper()
	r, err := template.Compile(context.Background(), template.Spec{Name: pkg, RegoPackage: pkg})
	if err != nil {
		t.Fatal(err)
	}
	v, err := event.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Render(context.Background(), template.Input(v, ""))
	if err != nil {
		t.Fatalf("render %s: %v", pkg, err)
	}
	return m
}

// asffOf is Trivy's output in the AWS Security Finding Format (`trivy image
// --format template --template @contrib/asff.tpl`) for a Trivy JSON report:
// one finding per vulnerability of every target.
func asffOf(t *testing.T, report []byte) []byte {
	t.Helper()
	var r struct {
		Results []struct {
			Target          string
			Vulnerabilities []struct {
				VulnerabilityID, PkgName, InstalledVersion, FixedVersion string
				Severity, Title, Description, PrimaryURL                 string
				CVSS                                                     map[string]struct {
					V3Vector string
					V3Score  float64
				}
			}
		}
	}
	if err := json.Unmarshal(report, &r); err != nil {
		t.Fatal(err)
	}
	findings := []map[string]any{}
	for _, res := range r.Results {
		for _, v := range res.Vulnerabilities {
			sev := v.Severity
			if sev == "UNKNOWN" {
				sev = "INFORMATIONAL"
			}
			nvd := v.CVSS["nvd"]
			findings = append(findings, map[string]any{
				"SchemaVersion": "2018-10-08",
				"Id":            res.Target + "/" + v.VulnerabilityID,
				"ProductArn":    "arn:aws:securityhub:" + awsRegion + "::product/aquasecurity/aquasecurity",
				"GeneratorId":   "Trivy/" + v.VulnerabilityID,
				"AwsAccountId":  asffAccountID,
				"Types":         []string{"Software and Configuration Checks/Vulnerabilities/CVE"},
				"CreatedAt":     "2024-03-01T12:00:00.123456789Z",
				"UpdatedAt":     "2024-03-01T12:00:00.123456789Z",
				"Severity":      map[string]any{"Label": sev},
				"Title":         "Trivy found a vulnerability to " + v.VulnerabilityID + " in container " + res.Target + ", related to " + v.PkgName,
				"Description":   v.Description,
				"Remediation": map[string]any{"Recommendation": map[string]any{
					"Text": "More information on this vulnerability is provided in the hyperlink", "Url": v.PrimaryURL}},
				"ProductFields": map[string]any{"Product Name": "Trivy"},
				"Resources": []map[string]any{{
					"Type": "Container", "Id": res.Target, "Partition": "aws", "Region": awsRegion,
					"Details": map[string]any{
						"Container": map[string]any{"ImageName": res.Target},
						"Other": map[string]any{
							"CVE ID": v.VulnerabilityID, "CVE Title": v.Title, "PkgName": v.PkgName,
							"Installed Package": v.InstalledVersion, "Patched Package": v.FixedVersion,
							"NvdCvssScoreV3": fmt.Sprint(nvd.V3Score), "NvdCvssVectorV3": nvd.V3Vector,
						},
					},
				}},
				"RecordState": "ACTIVE",
			})
		}
	}
	b, err := json.Marshal(map[string]any{"Findings": findings})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// platformExecution is an execution as GET /executions shows it.
type platformExecution struct {
	ID      string            `json:"id"`
	EventID string            `json:"event_id"`
	Route   string            `json:"route"`
	Action  string            `json:"action"`
	Status  string            `json:"status"`
	Output  string            `json:"output"`
	Details map[string]string `json:"details"`
	Error   string            `json:"error"`
	Attempt int               `json:"attempt"`
}

// waitOK waits until want executions succeeded, polling GET /executions
// (postee gives no other signal), and returns them by "route/action".
func waitOK(t *testing.T, p *postee, want int) map[string]platformExecution {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequest("GET", p.URL+"/executions?limit=1000", nil)
		req.Header.Set("X-API-Key", apiKey)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Executions []platformExecution `json:"executions"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET /executions: %v", err)
		}
		byKey := map[string]platformExecution{}
		ok := 0
		for _, x := range body.Executions {
			byKey[x.Route+"/"+x.Action] = x
			if x.Status == "ok" {
				ok++
			}
		}
		if ok == want && len(body.Executions) == want {
			return byKey
		}
		if time.Now().After(deadline) {
			var lines []string
			for _, x := range body.Executions {
				lines = append(lines, fmt.Sprintf("%s/%s: %s (attempt %d) %s %s", x.Route, x.Action, x.Status, x.Attempt, x.Error, x.Output))
			}
			sort.Strings(lines)
			t.Fatalf("%d of %d executions succeeded:\n%s\npostee log:\n%s", ok, want, strings.Join(lines, "\n"), p.Stderr)
		}
		<-tick.C
	}
}

// TestPlatformActions runs postee with jira, serviceNow, dependencytrack,
// nexusIq, awssecurityhub, kubernetes and docker actions, each pointed at a
// local service that answers as the real one does (a private dockerd for
// docker), sends a Trivy report (and its ASFF form for Security Hub) and a
// Trivy Operator VulnerabilityReport, and checks every request field by
// field against the bundled templates' output.
func TestPlatformActions(t *testing.T) {
	build(t)
	trivy := testevents.TrivyReport(trivyImage, 6)
	operator := testevents.TrivyOperatorReport(operatorNS, operatorName, 5)
	asff := asffOf(t, trivy)

	jira := newPlatform(t, "jira", false, answerJira())
	snow := newPlatform(t, "servicenow", false, answerServiceNow())
	dtrack := newPlatform(t, "dependencytrack", false, answerDependencyTrack())
	iq := newFakeNexusIQ(t)
	hub := newPlatform(t, "securityhub", false, answerSecurityHub)
	kube := newFakeKube(t)

	// The docker action needs a Docker Engine: a private one. Without it
	// (no dockerd, not root) the other actions are still checked.
	var docker *testdocker.Daemon
	noDocker := ""
	if d, err := testdocker.Start(); err != nil {
		if testdocker.InCI() {
			t.Fatalf("no Docker Engine (CI is set: install docker.io and busybox-static): %v", err)
		}
		noDocker = err.Error()
	} else {
		docker = d
		t.Cleanup(func() {
			if err := d.Stop(); err != nil {
				t.Errorf("stop dockerd: %v", err)
			}
		})
	}

	awsDir := t.TempDir()
	env := []string{
		"POSTEE_API_KEY=" + apiKey,
		"JIRA_PAT=" + jiraPAT, "SERVICENOW_PASSWORD=" + snowPassword,
		"DEPENDENCY_TRACK_API_KEY=" + dtrackAPIKey, "NEXUS_IQ_PASSWORD=" + iqPassword,
		// The AWS SDK's default chain, pointed at the local Security Hub.
		"AWS_ACCESS_KEY_ID=" + awsKeyID, "AWS_SECRET_ACCESS_KEY=" + awsSecret, "AWS_SESSION_TOKEN=" + awsSession,
		"AWS_REGION=" + awsRegion, "AWS_DEFAULT_REGION=", "AWS_PROFILE=",
		"AWS_CONFIG_FILE=" + filepath.Join(awsDir, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(awsDir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL=" + hub.srv.URL, "AWS_ENDPOINT_URL_SECURITYHUB=",
	}
	dockerAction, dockerRoutes := "", ""
	executions := 11
	if docker != nil {
		env = append(env, docker.Env()...)
		executions += 2
		dockerRoutes = ", docker"
		dockerAction = `
- name: docker
  type: docker
  enable: true
  docker-image-name: ` + testdocker.Image + `
  docker-pull: never
  docker-network: none
  docker-cmd: ["sh", "-c", "echo \"route=$POSTEE_ROUTE\"; printf '%s' \"$POSTEE_EVENT\""]
  timeout: 1m
`
	}

	cfg := `
routes:
- name: trivy-jira
  input: input.ArtifactType == "container_image"
  actions: [jira]
  template: trivy-jira
- name: operator-jira
  input: input.kind == "VulnerabilityReport"
  actions: [jira]
  template: operator-jira
- name: trivy-servicenow
  input: input.ArtifactType == "container_image"
  actions: [servicenow]
  template: servicenow
- name: operator-servicenow
  input: input.kind == "VulnerabilityReport"
  actions: [servicenow]
  template: servicenow
- name: trivy-sbom
  input: input.ArtifactType == "container_image"
  actions: [dependencytrack, nexus-iq]
  template: cyclonedx
- name: operator-dependencytrack
  input: input.kind == "VulnerabilityReport"
  actions: [dependencytrack]
  template: operator-bom
- name: operator-sbom
  input: input.kind == "VulnerabilityReport"
  actions: [nexus-iq]
  template: cyclonedx
- name: trivy-asff
  input-files: ["Trivy AWS Findings"]
  actions: [security-hub]
  template: raw-json
- name: trivy-respond
  input: input.ArtifactType == "container_image"
  actions: [quarantine-image` + dockerRoutes + `]
  template: raw-json
- name: operator-respond
  input: input.kind == "VulnerabilityReport"
  actions: [quarantine-workload` + dockerRoutes + `]
  template: raw-json
templates:
- name: trivy-jira
  rego-package: postee.trivy.jira
- name: operator-jira
  rego-package: postee.trivyoperator.jira
- name: servicenow
  rego-package: postee.servicenow
- name: cyclonedx
  rego-package: postee.vuls.cyclondx
- name: operator-bom
  rego-package: postee.trivyoperator.dependencytrack
- name: raw-json
  rego-package: postee.rawmessage.json
actions:
- name: jira
  type: jira
  enable: true
  url: ` + jira.srv.URL + `/jira
  token: $JIRA_PAT
  project-key: SEC
  labels: [trivy, security]
- name: servicenow
  type: serviceNow
  enable: true
  url: ` + snow.srv.URL + `/snow
  user: ` + snowUser + `
  password: $SERVICENOW_PASSWORD
  board: incident
- name: dependencytrack
  type: dependencytrack
  enable: true
  url: ` + dtrack.srv.URL + `/dtrack/
  dependency-track-api-key: $DEPENDENCY_TRACK_API_KEY
- name: nexus-iq
  type: nexusIq
  enable: true
  url: ` + iq.srv.URL + `/iq
  user: postee
  password: ${NEXUS_IQ_PASSWORD}
  organization-id: ` + iqOrgID + `
- name: security-hub
  type: awssecurityhub
  enable: true
  timeout: 30s
- name: quarantine-image
  type: kubernetes
  enable: true
  kube-config-file: ` + kube.kubeconfig + `
  kube-namespace: prod
  kube-label-selector: app=web
  kube-actions:
    labels:
      postee.dev/quarantine: "true"
    annotations:
      postee.dev/image: event.input.ArtifactName
      postee.dev/image-id: event.input.Metadata.ImageID
- name: quarantine-workload
  type: kubernetes
  enable: true
  kube-config-file: ` + kube.kubeconfig + `
  kube-namespace: prod
  kube-label-selector: app=web,env=event.input.metadata.namespace
  kube-actions:
    labels:
      postee.dev/quarantine: "true"
      postee.dev/critical: event.input.report.summary.criticalCount
    annotations:
      postee.dev/image: event.input.report.registry.server/event.input.report.artifact.repository:event.input.report.artifact.tag
      postee.dev/report: event.input.metadata.name
` + dockerAction
	p := start(t, cfg, opts{env: env})
	for _, ev := range [][]byte{trivy, asff, operator} {
		p.mustPost("/", string(ev))
	}
	xs := waitOK(t, p, executions)

	t.Run("jira", func(t *testing.T) { checkJira(t, jira, trivy, operator) })
	t.Run("servicenow", func(t *testing.T) { checkServiceNow(t, snow, trivy, operator) })
	t.Run("dependencytrack", func(t *testing.T) { checkDependencyTrack(t, dtrack, trivy, operator) })
	t.Run("nexusiq", func(t *testing.T) { checkNexusIQ(t, iq, trivy, operator, xs) })
	t.Run("awssecurityhub", func(t *testing.T) { checkSecurityHub(t, hub, asff, xs) })
	t.Run("kubernetes", func(t *testing.T) { checkKube(t, kube, trivy) })
	t.Run("docker", func(t *testing.T) {
		if docker == nil {
			t.Skipf("no Docker Engine for the docker action: %s", noDocker)
		}
		for route, raw := range map[string][]byte{"trivy-respond": trivy, "operator-respond": operator} {
			x := xs[route+"/docker"]
			want := "route=" + route + "\n" + renderMessage(t, "postee.rawmessage.json", raw).Description
			if x.Output != want {
				t.Errorf("%s: the container's output is not POSTEE_EVENT, the rendered description:\n got %.300q\nwant %.300q", route, x.Output, want)
			}
			if x.Details["exit_code"] != "0" || x.Details["image"] != testdocker.Image || !strings.HasPrefix(x.Details["container"], "postee-docker-") {
				t.Errorf("%s: details %v", route, x.Details)
			}
		}
		// The containers were removed.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if list, err := docker.Client.ContainerList(ctx, dockerclient.ContainerListOptions{All: true}); err != nil || len(list.Items) != 0 {
			t.Errorf("containers left on the daemon: %+v %v", list, err)
		}
	})

	// No secret in postee's log or in an execution's outcome.
	outcomes, _ := json.Marshal(xs)
	for _, secret := range []string{jiraPAT, snowPassword, dtrackAPIKey, iqPassword, awsSecret, awsSession, kubeToken} {
		if strings.Contains(p.Stderr.String(), secret) || strings.Contains(p.Stdout.String(), secret) {
			t.Errorf("postee's log shows the secret %.8s…", secret)
		}
		if strings.Contains(string(outcomes), secret) {
			t.Errorf("an execution's outcome shows the secret %.8s…", secret)
		}
	}
}

// --- Jira (Server / Data Center, personal access token) ---

var jiraFields = []map[string]any{
	{"id": "summary", "name": "Summary", "schema": map[string]any{"type": "string", "system": "summary"}},
	{"id": "description", "name": "Description", "schema": map[string]any{"type": "string", "system": "description"}},
	{"id": "issuetype", "name": "Issue Type", "schema": map[string]any{"type": "issuetype", "system": "issuetype"}},
	{"id": "project", "name": "Project", "schema": map[string]any{"type": "project", "system": "project"}},
	{"id": "priority", "name": "Priority", "schema": map[string]any{"type": "priority", "system": "priority"}},
	{"id": "labels", "name": "Labels", "schema": map[string]any{"type": "array", "items": "string", "system": "labels"}},
}

func answerJira() func(http.ResponseWriter, platformRequest) {
	issues := 0
	return func(w http.ResponseWriter, r platformRequest) { jiraAnswer(w, r, &issues) }
}

func jiraAnswer(w http.ResponseWriter, r platformRequest, issues *int) {
	if r.Header.Get("Authorization") != "Bearer "+jiraPAT {
		answerJSON(w, 401, map[string]any{"errorMessages": []string{"You are not authenticated. Authentication required to perform this operation."}})
		return
	}
	path := strings.TrimPrefix(r.Path, "/jira")
	switch {
	case r.Method == "GET" && path == "/rest/api/2/serverInfo":
		answerJSON(w, 200, map[string]any{"baseUrl": "https://jira.example.com/jira", "version": "9.12.2", "versionNumbers": []int{9, 12, 2},
			"deploymentType": "Server", "buildNumber": 9120002, "serverTitle": "Jira"})
	case r.Method == "GET" && path == "/rest/api/2/field":
		answerJSON(w, 200, jiraFields)
	case r.Method == "GET" && path == "/rest/api/2/priority":
		answerJSON(w, 200, []map[string]any{{"id": "1", "name": "Highest"}, {"id": "2", "name": "High"}, {"id": "3", "name": "Medium"}})
	case r.Method == "GET" && path == "/rest/api/2/issue/createmeta/SEC/issuetypes":
		answerJSON(w, 200, map[string]any{"values": []map[string]any{{"id": "10001", "name": "Bug", "subtask": false}, {"id": "10002", "name": "Task", "subtask": false}},
			"maxResults": 50, "startAt": 0, "total": 2, "isLast": true})
	case r.Method == "GET" && path == "/rest/api/2/issue/createmeta/SEC/issuetypes/10002":
		var screen []map[string]any
		for _, f := range jiraFields {
			screen = append(screen, map[string]any{"fieldId": f["id"], "name": f["name"], "schema": f["schema"],
				"required": f["id"] == "summary" || f["id"] == "project" || f["id"] == "issuetype", "operations": []string{"set"}, "hasDefaultValue": false})
		}
		answerJSON(w, 200, map[string]any{"values": screen, "maxResults": 50, "startAt": 0, "total": len(screen), "isLast": true})
	case r.Method == "POST" && path == "/rest/api/2/issue":
		var in struct {
			Fields map[string]any `json:"fields"`
		}
		if json.Unmarshal([]byte(r.Body), &in) != nil || in.Fields["summary"] == nil {
			answerJSON(w, 400, map[string]any{"errorMessages": []string{}, "errors": map[string]string{"summary": "You must specify a summary of the issue."}})
			return
		}
		*issues++
		n := *issues
		answerJSON(w, 201, map[string]any{"id": fmt.Sprint(10100 + n), "key": fmt.Sprintf("SEC-%d", n), "self": "https://jira.example.com/jira/rest/api/2/issue/" + fmt.Sprint(10100+n)})
	default:
		answerJSON(w, 404, map[string]any{"errorMessages": []string{"not found: " + r.Method + " " + path}})
	}
}

func checkJira(t *testing.T, jira *platform, trivy, operator []byte) {
	posts := jira.matching("POST", "/jira/rest/api/2/issue")
	if len(posts) != 2 {
		t.Fatalf("%d issues created, want 2: %+v", len(posts), jira.requests())
	}
	want := map[string]sdk.Message{}
	for pkg, raw := range map[string][]byte{"postee.trivy.jira": trivy, "postee.trivyoperator.jira": operator} {
		m := renderMessage(t, pkg, raw)
		want[m.Title] = m
	}
	dedup := regexp.MustCompile(`^postee-[0-9a-f]{16}$`)
	for _, r := range posts {
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("User-Agent") != "postee-jira" {
			t.Errorf("headers %v", r.Header)
		}
		var in struct {
			Fields struct {
				Project     map[string]string `json:"project"`
				IssueType   map[string]string `json:"issuetype"`
				Priority    map[string]string `json:"priority"`
				Summary     string            `json:"summary"`
				Description string            `json:"description"`
				Labels      []string          `json:"labels"`
			} `json:"fields"`
		}
		if err := json.Unmarshal([]byte(r.Body), &in); err != nil {
			t.Fatalf("issue: %v\n%s", err, r.Body)
		}
		f := in.Fields
		m, ok := want[f.Summary]
		if !ok {
			t.Errorf("summary %q is no template's title (%v)", f.Summary, keys(want))
			continue
		}
		delete(want, f.Summary)
		if f.Description != m.Description {
			t.Errorf("%s: description differs from the template's:\n got %.200q\nwant %.200q", f.Summary, f.Description, m.Description)
		}
		if f.Project["key"] != "SEC" || f.IssueType["id"] != "10002" || f.Priority["id"] != "2" {
			t.Errorf("%s: project %v, issuetype %v, priority %v", f.Summary, f.Project, f.IssueType, f.Priority)
		}
		if len(f.Labels) != 3 || f.Labels[0] != "trivy" || f.Labels[1] != "security" || !dedup.MatchString(f.Labels[2]) {
			t.Errorf("%s: labels %v", f.Summary, f.Labels)
		}
	}
	// The metadata were read once for both events.
	if n := len(jira.matching("GET", "/jira/rest/api/2/issue/createmeta/SEC/issuetypes/10002")); n != 1 {
		t.Errorf("create metadata read %d times, want 1", n)
	}
	for _, r := range jira.requests() {
		if r.Header.Get("Authorization") != "Bearer "+jiraPAT {
			t.Errorf("%s %s without the token", r.Method, r.Path)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// --- ServiceNow Table API ---

func answerServiceNow() func(http.ResponseWriter, platformRequest) {
	n := 0
	return func(w http.ResponseWriter, r platformRequest) {
		auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(snowUser+":"+snowPassword))
		if r.Header.Get("Authorization") != auth {
			answerJSON(w, 401, map[string]any{"error": map[string]string{"message": "User Not Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"})
			return
		}
		if r.Method != "POST" || r.Path != "/snow/api/now/table/incident" {
			answerJSON(w, 400, map[string]any{"error": map[string]string{"message": "Invalid table", "detail": r.Path}, "status": "failure"})
			return
		}
		n++
		answerJSON(w, 201, map[string]any{"result": map[string]string{"number": fmt.Sprintf("INC00100%02d", n), "sys_id": fmt.Sprintf("%032x", 0x5e1f00+n)}})
	}
}

func checkServiceNow(t *testing.T, snow *platform, trivy, operator []byte) {
	posts := snow.matching("POST", "/snow/api/now/table/incident")
	if len(posts) != 2 || len(snow.requests()) != 2 {
		t.Fatalf("%d records created, want 2: %+v", len(posts), snow.requests())
	}
	want := map[string]map[string]any{}
	for _, raw := range [][]byte{trivy, operator} {
		var rec map[string]any
		if err := json.Unmarshal([]byte(renderMessage(t, "postee.servicenow", raw).Description), &rec); err != nil {
			t.Fatalf("postee.servicenow does not render a record: %v", err)
		}
		rec["caller_id"] = snowUser
		want[fmt.Sprint(rec["short_description"])] = rec
	}
	for _, r := range posts {
		if q := r.Query; q.Get("sysparm_fields") != "number,sys_id" || q.Get("sysparm_exclude_reference_link") != "true" {
			t.Errorf("query %v", q)
		}
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
			t.Errorf("headers %v", r.Header)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(r.Body), &rec); err != nil {
			t.Fatalf("record: %v\n%s", err, r.Body)
		}
		sd := fmt.Sprint(rec["short_description"])
		w, ok := want[sd]
		if !ok {
			t.Errorf("short_description %q is not the template's (%v)", sd, keys(want))
			continue
		}
		delete(want, sd)
		for _, k := range []string{"description", "work_notes", "category", "subcategory", "impact", "urgency", "opened_at"} {
			if _, ok := w[k]; !ok {
				t.Errorf("%s: the template's record has no %s", sd, k)
			}
		}
		for k := range rec {
			if _, ok := w[k]; !ok {
				t.Errorf("%s: field %s is not in the template's record", sd, k)
			}
		}
		for k, v := range w {
			if fmt.Sprint(rec[k]) != fmt.Sprint(v) {
				t.Errorf("%s: %s = %.120q, want %.120q", sd, k, fmt.Sprint(rec[k]), fmt.Sprint(v))
			}
		}
	}
}

// --- Dependency-Track ---

func answerDependencyTrack() func(http.ResponseWriter, platformRequest) {
	n := 0
	return func(w http.ResponseWriter, r platformRequest) {
		if r.Header.Get("X-Api-Key") != dtrackAPIKey {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Method != "PUT" || r.Path != "/dtrack/api/v1/bom" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		n++
		answerJSON(w, 200, map[string]string{"token": fmt.Sprintf("3c8c5b8e-1d2f-4a6b-9c0d-%012d", n)})
	}
}

func checkDependencyTrack(t *testing.T, dtrack *platform, trivy, operator []byte) {
	puts := dtrack.matching("PUT", "/dtrack/api/v1/bom")
	if len(puts) != 2 || len(dtrack.requests()) != 2 {
		t.Fatalf("%d BOM uploads, want 2: %+v", len(puts), dtrack.requests())
	}
	// The Trivy report's route renders postee.vuls.cyclondx, the Trivy
	// Operator report's postee.trivyoperator.dependencytrack; the project is
	// the image, split at its tag (a Trivy Operator report's is its
	// artifact's repository, without the registry, as in the original
	// template).
	want := map[string]struct {
		version string
		bom     string
	}{
		"registry.example.com/team/app": {"1.2.3", renderMessage(t, "postee.vuls.cyclondx", trivy).Description},
		"team/web":                      {"1.4.2", renderMessage(t, "postee.trivyoperator.dependencytrack", operator).Description},
	}
	for _, r := range puts {
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
		}
		var up struct {
			ProjectName    string `json:"projectName"`
			ProjectVersion string `json:"projectVersion"`
			AutoCreate     bool   `json:"autoCreate"`
			BOM            string `json:"bom"`
		}
		if err := json.Unmarshal([]byte(r.Body), &up); err != nil {
			t.Fatalf("upload: %v\n%.300s", err, r.Body)
		}
		w, ok := want[up.ProjectName]
		if !ok {
			t.Errorf("project %q, want one of %v", up.ProjectName, keys(want))
			continue
		}
		delete(want, up.ProjectName)
		bom, err := base64.StdEncoding.DecodeString(up.BOM)
		if up.ProjectVersion != w.version || !up.AutoCreate || err != nil {
			t.Errorf("%s: version %q, autoCreate %v, bom %v", up.ProjectName, up.ProjectVersion, up.AutoCreate, err)
		}
		if !jsonEqual(t, string(bom), w.bom) {
			t.Errorf("%s: the BOM is not the template's:\n got %.300s\nwant %.300s", up.ProjectName, bom, w.bom)
		}
		var head struct {
			BOMFormat  string `json:"bomFormat"`
			Components []any  `json:"components"`
		}
		if json.Unmarshal(bom, &head) != nil || head.BOMFormat != "CycloneDX" || len(head.Components) == 0 {
			t.Errorf("%s: not a CycloneDX BOM with components: %.300s", up.ProjectName, bom)
		}
	}
}

// --- Nexus IQ ---

// fakeNexusIQ holds one application already (the Trivy report's image);
// the Trivy Operator report's is created by the action.
type fakeNexusIQ struct {
	*platform
	apps map[string]string // public id -> id
}

const (
	iqTrivyApp    = "registry_example_com_team_app_1_2_3"
	iqOperatorApp = "team_web_1_4_2"
	iqTrivyAppID  = "4bb67dcfc86344e3a483832f8c496419"
)

func newFakeNexusIQ(t *testing.T) *fakeNexusIQ {
	f := &fakeNexusIQ{apps: map[string]string{iqTrivyApp: iqTrivyAppID}}
	f.platform = newPlatform(t, "nexusiq", false, f.answer)
	return f
}

func (f *fakeNexusIQ) answer(w http.ResponseWriter, r platformRequest) {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("postee:"+iqPassword))
	if r.Header.Get("Authorization") != auth {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "<html><body>Unauthorized</body></html>")
		return
	}
	app := func(pub, id string) map[string]string {
		return map[string]string{"id": id, "publicId": pub, "name": pub, "organizationId": iqOrgID, "contactUserName": "admin"}
	}
	switch {
	case r.Method == "GET" && r.Path == "/iq/api/v2/applications":
		list := []map[string]string{}
		if id, ok := f.apps[r.Query.Get("publicId")]; ok {
			list = append(list, app(r.Query.Get("publicId"), id))
		}
		answerJSON(w, 200, map[string]any{"applications": list})
	case r.Method == "POST" && r.Path == "/iq/api/v2/applications":
		var in map[string]string
		if json.Unmarshal([]byte(r.Body), &in) != nil || in["publicId"] == "" || in["organizationId"] != iqOrgID {
			http.Error(w, "Invalid application", http.StatusBadRequest)
			return
		}
		if _, ok := f.apps[in["publicId"]]; ok {
			http.Error(w, fmt.Sprintf("Application public ID '%s' is already used.", in["publicId"]), http.StatusBadRequest)
			return
		}
		id := fmt.Sprintf("%032x", 0xa11ce000+len(f.apps))
		f.apps[in["publicId"]] = id
		answerJSON(w, 200, app(in["publicId"], id))
	case r.Method == "POST" && strings.HasPrefix(r.Path, "/iq/api/v2/scan/applications/"):
		id, src, _ := strings.Cut(strings.TrimPrefix(r.Path, "/iq/api/v2/scan/applications/"), "/sources/")
		if src != "postee" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "Unsupported Media Type", http.StatusUnsupportedMediaType)
			return
		}
		answerJSON(w, 202, map[string]string{"statusUrl": "api/v2/scan/applications/" + id + "/status/9cee2b6366fc4d328edc318eae46b2cb"})
	default:
		http.NotFound(w, nil)
	}
}

func checkNexusIQ(t *testing.T, iq *fakeNexusIQ, trivy, operator []byte, xs map[string]platformExecution) {
	iq.mu.Lock()
	opID, apps := iq.apps[iqOperatorApp], fmt.Sprint(iq.apps)
	iq.mu.Unlock()
	if opID == "" {
		t.Fatalf("the application %s was not created; applications %s", iqOperatorApp, apps)
	}
	byID := map[string]string{iqTrivyAppID: iqTrivyApp, opID: iqOperatorApp}
	// The calls for each application, in order (the two reports' executions
	// may interleave): the lookup, the creation when missing, the SBOM.
	calls := map[string][]string{}
	scans := map[string]platformRequest{}
	for _, r := range iq.requests() {
		var app, call string
		switch {
		case r.Method == "GET" && r.Path == "/iq/api/v2/applications":
			app, call = r.Query.Get("publicId"), "lookup"
		case r.Method == "POST" && r.Path == "/iq/api/v2/applications":
			var in map[string]string
			json.Unmarshal([]byte(r.Body), &in)
			app, call = in["publicId"], "create"
			if !jsonEqual(t, r.Body, `{"publicId":"`+app+`","name":"`+app+`","organizationId":"`+iqOrgID+`"}`) {
				t.Errorf("create body %s", r.Body)
			}
		case r.Method == "POST" && strings.HasSuffix(r.Path, "/sources/postee"):
			id := strings.TrimSuffix(strings.TrimPrefix(r.Path, "/iq/api/v2/scan/applications/"), "/sources/postee")
			app, call = byID[id], "sbom"
			scans[app] = r
		default:
			t.Errorf("unexpected %s %s", r.Method, r.Path)
		}
		if r.Header.Get("Accept") != "application/json" {
			t.Errorf("%s %s: Accept %q", r.Method, r.Path, r.Header.Get("Accept"))
		}
		calls[app] = append(calls[app], call)
	}
	want := map[string][]string{iqTrivyApp: {"lookup", "sbom"}, iqOperatorApp: {"lookup", "create", "sbom"}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("calls by application %v, want %v", calls, want)
	}
	for app, raw := range map[string][]byte{iqTrivyApp: trivy, iqOperatorApp: operator} {
		r, ok := scans[app]
		if !ok {
			continue // reported above
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: SBOM sent as %q", app, ct)
		}
		if want := renderMessage(t, "postee.vuls.cyclondx", raw).Description; !jsonEqual(t, r.Body, want) {
			t.Errorf("%s: the SBOM is not the template's:\n got %.300s\nwant %.300s", app, r.Body, want)
		}
	}
	if d := xs["operator-sbom/nexus-iq"].Details; d["application_created"] != "true" || d["public_id"] != iqOperatorApp || d["application_id"] != opID {
		t.Errorf("operator execution details %v", d)
	}
	if d := xs["trivy-sbom/nexus-iq"].Details; d["application_created"] == "true" || d["application_id"] != iqTrivyAppID {
		t.Errorf("trivy execution details %v", d)
	}
}

// --- AWS Security Hub ---

func answerSecurityHub(w http.ResponseWriter, r platformRequest) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="+awsKeyID+"/") {
		w.Header().Set("X-Amzn-ErrorType", "UnrecognizedClientException")
		answerJSON(w, 403, map[string]string{"Code": "UnrecognizedClientException", "Message": "The security token included in the request is invalid."})
		return
	}
	var body struct {
		Findings []json.RawMessage `json:"Findings"`
	}
	if r.Method != "POST" || r.Path != "/findings/import" || json.Unmarshal([]byte(r.Body), &body) != nil || len(body.Findings) == 0 || len(body.Findings) > 100 {
		w.Header().Set("X-Amzn-ErrorType", "InvalidInputException")
		answerJSON(w, 400, map[string]string{"Code": "InvalidInputException", "Message": "Invalid parameter 'Findings'"})
		return
	}
	w.Header().Set("X-Amzn-RequestId", "5f2b7c1e-0000-4000-8000-000000000001")
	answerJSON(w, 200, map[string]any{"FailedCount": 0, "SuccessCount": len(body.Findings), "FailedFindings": []any{}})
}

func checkSecurityHub(t *testing.T, hub *platform, asff []byte, xs map[string]platformExecution) {
	reqs := hub.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1 BatchImportFindings: %+v", len(reqs), reqs)
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/findings/import" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%s %s (%s), want POST /findings/import", r.Method, r.Path, r.Header.Get("Content-Type"))
	}
	if auth := r.Header.Get("Authorization"); !strings.Contains(auth, "/"+awsRegion+"/securityhub/aws4_request") || !strings.Contains(auth, "Signature=") {
		t.Errorf("Authorization %q is not a SigV4 signature for securityhub in %s", auth, awsRegion)
	}
	if r.Header.Get("X-Amz-Security-Token") != awsSession || r.Header.Get("X-Amz-Date") == "" {
		t.Errorf("X-Amz-Security-Token %q, X-Amz-Date %q", r.Header.Get("X-Amz-Security-Token"), r.Header.Get("X-Amz-Date"))
	}
	var got, want struct {
		Findings []json.RawMessage `json:"Findings"`
	}
	if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
		t.Fatalf("body: %v", err)
	}
	json.Unmarshal(asff, &want)
	if len(got.Findings) != len(want.Findings) || len(want.Findings) != 6 {
		t.Fatalf("%d findings imported, want %d", len(got.Findings), len(want.Findings))
	}
	for i := range want.Findings {
		if !jsonEqual(t, string(got.Findings[i]), string(want.Findings[i])) {
			t.Errorf("finding %d differs from Trivy's:\n got %s\nwant %s", i, got.Findings[i], want.Findings[i])
		}
	}
	if d := xs["trivy-asff/security-hub"].Details; d["success_count"] != "6" || d["failed_count"] != "0" || d["region"] != awsRegion {
		t.Errorf("details %v", d)
	}
}

// --- Kubernetes API server ---

type fakePod struct {
	name        string
	labels      map[string]string
	annotations map[string]string
}

// fakeKube answers as the Kubernetes API server does for listing the pods
// of a namespace with a label selector and merge-patching a pod (TLS, a
// bearer token), holding pods in namespace prod.
type fakeKube struct {
	*platform
	pods       []*fakePod
	kubeconfig string
}

func newFakeKube(t *testing.T) *fakeKube {
	f := &fakeKube{pods: []*fakePod{
		{name: "web-1", labels: map[string]string{"app": "web", "env": "prod"}, annotations: map[string]string{"kept": "yes"}},
		{name: "web-2", labels: map[string]string{"app": "web", "env": "staging"}},
		{name: "db-1", labels: map[string]string{"app": "db", "env": "prod"}},
	}}
	f.platform = newPlatform(t, "kubernetes", true, f.answer)
	ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}))
	f.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority-data: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: postee}
current-context: e2e
users:
- name: postee
  user:
    token: %s
`, f.srv.URL, ca, kubeToken)
	if err := os.WriteFile(f.kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeKube) status(w http.ResponseWriter, code int, reason, msg string) {
	answerJSON(w, code, map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": msg, "reason": reason, "code": code})
}

func podJSON(p *fakePod) map[string]any {
	return map[string]any{"kind": "Pod", "apiVersion": "v1", "metadata": map[string]any{
		"name": p.name, "namespace": "prod", "uid": "uid-" + p.name, "resourceVersion": "4711", "labels": p.labels, "annotations": p.annotations}}
}

func (f *fakeKube) answer(w http.ResponseWriter, r platformRequest) {
	if r.Header.Get("Authorization") != "Bearer "+kubeToken {
		f.status(w, 401, "Unauthorized", "Unauthorized")
		return
	}
	name, isPod := strings.CutPrefix(r.Path, "/api/v1/namespaces/prod/pods/")
	switch {
	case r.Method == "GET" && r.Path == "/api/v1/namespaces/prod/pods":
		sel, err := labels.Parse(r.Query.Get("labelSelector"))
		if err != nil {
			f.status(w, 400, "BadRequest", "unable to parse requirement: "+err.Error())
			return
		}
		items := []any{}
		for _, p := range f.pods {
			if sel.Matches(labels.Set(p.labels)) {
				items = append(items, podJSON(p))
			}
		}
		answerJSON(w, 200, map[string]any{"kind": "PodList", "apiVersion": "v1", "metadata": map[string]any{"resourceVersion": "4711"}, "items": items})
	case r.Method == "PATCH" && isPod:
		if r.Header.Get("Content-Type") != "application/merge-patch+json" {
			f.status(w, 415, "UnsupportedMediaType", "the body of the request was in an unknown format")
			return
		}
		var patch struct {
			Metadata struct {
				Labels, Annotations map[string]string
			}
		}
		if err := json.Unmarshal([]byte(r.Body), &patch); err != nil {
			f.status(w, 400, "BadRequest", "error decoding patch: "+err.Error())
			return
		}
		for _, p := range f.pods {
			if p.name == name {
				if p.annotations == nil {
					p.annotations = map[string]string{}
				}
				for k, v := range patch.Metadata.Labels {
					p.labels[k] = v
				}
				for k, v := range patch.Metadata.Annotations {
					p.annotations[k] = v
				}
				answerJSON(w, 200, podJSON(p))
				return
			}
		}
		f.status(w, 404, "NotFound", fmt.Sprintf("pods %q not found", name))
	default:
		f.status(w, 404, "NotFound", "the server could not find the requested resource")
	}
}

func checkKube(t *testing.T, kube *fakeKube, trivy []byte) {
	var lists []string
	for _, r := range kube.matching("GET", "/api/v1/namespaces/prod/pods") {
		sel, err := labels.Parse(r.Query.Get("labelSelector"))
		if err != nil || r.Query.Get("limit") != "500" {
			t.Errorf("list query %v: %v", r.Query, err)
			continue
		}
		lists = append(lists, sel.String())
	}
	sort.Strings(lists)
	// The Trivy report's action selects app=web; the Trivy Operator
	// report's takes env from the report's namespace.
	if fmt.Sprint(lists) != "[app=web app=web,env=prod]" {
		t.Errorf("list selectors %v, want [app=web app=web,env=prod]", lists)
	}
	patches := kube.matching("PATCH", "/api/v1/namespaces/prod/pods/.*")
	var patched []string
	for _, r := range patches {
		patched = append(patched, strings.TrimPrefix(r.Path, "/api/v1/namespaces/prod/pods/"))
		if r.Query.Get("fieldManager") != "postee" || r.Header.Get("Content-Type") != "application/merge-patch+json" {
			t.Errorf("patch %s: query %v, Content-Type %q", r.Path, r.Query, r.Header.Get("Content-Type"))
		}
	}
	sort.Strings(patched)
	// web-1 by both actions, web-2 by the Trivy report's only.
	if fmt.Sprint(patched) != "[web-1 web-1 web-2]" {
		t.Fatalf("patched %v, want [web-1 web-1 web-2]", patched)
	}
	var report struct {
		Metadata struct{ ImageID string }
	}
	json.Unmarshal(trivy, &report)
	trivyPatch := `{"metadata":{"labels":{"postee.dev/quarantine":"true"},"annotations":{"postee.dev/image":"` + trivyImage + `","postee.dev/image-id":"` + report.Metadata.ImageID + `"}}}`
	operatorPatch := `{"metadata":{"labels":{"postee.dev/quarantine":"true","postee.dev/critical":"1"},"annotations":{"postee.dev/image":"registry.example.com/team/web:1.4.2","postee.dev/report":"replicaset-web-6d4cf56db6-web"}}}`
	var nTrivy, nOperator int
	for _, r := range patches {
		switch {
		case jsonEqual(t, r.Body, trivyPatch):
			nTrivy++
		case jsonEqual(t, r.Body, operatorPatch) && strings.HasSuffix(r.Path, "/web-1"):
			nOperator++
		default:
			t.Errorf("patch %s: %s\nwant %s\n  or %s", r.Path, r.Body, trivyPatch, operatorPatch)
		}
	}
	if nTrivy != 2 || nOperator != 1 {
		t.Errorf("%d patches of the Trivy report's action (want 2), %d of the Trivy Operator's (want 1)", nTrivy, nOperator)
	}
	kube.mu.Lock()
	defer kube.mu.Unlock()
	if a := kube.pods[0].annotations; a["kept"] != "yes" || a["postee.dev/report"] == "" {
		t.Errorf("web-1 annotations after the patches: %v", a)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const (
	testKeyID   = "AKIDPOSTEETEST000001"
	testSecret  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTESTSECRET"
	testSession = "FwoGZXIvYXdzEXAMPLESESSIONTOKENs3cr3t"
	testRegion  = "eu-central-1"
)

// awsEnv points the AWS SDK at endpoint with fake static credentials, for
// this test only (t.Setenv restores everything afterwards): no shared
// config files, no instance metadata.
func awsEnv(t *testing.T, endpoint string) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":            testKeyID,
		"AWS_SECRET_ACCESS_KEY":        testSecret,
		"AWS_SESSION_TOKEN":            testSession,
		"AWS_REGION":                   testRegion,
		"AWS_DEFAULT_REGION":           "",
		"AWS_PROFILE":                  "",
		"AWS_CONFIG_FILE":              filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE":  filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":    "true",
		"AWS_ENDPOINT_URL":             "",
		"AWS_ENDPOINT_URL_SECURITYHUB": endpoint,
		"AWS_RETRY_MODE":               "",
		"AWS_MAX_ATTEMPTS":             "",
	} {
		t.Setenv(k, v)
	}
}

// call is one BatchImportFindings request the fake received.
type call struct {
	method, path string
	header       http.Header
	findings     []map[string]any
	raw          []byte
}

func (c call) ids() []string {
	var out []string
	for _, f := range c.findings {
		out = append(out, fmt.Sprint(f["Id"]))
	}
	return out
}

// answer is a forced reply of the fake.
type answer struct {
	status int
	header map[string]string
	body   string
}

// fakeHub answers BatchImportFindings (POST /findings/import, the
// restJson1 protocol) like Security Hub: {"FailedCount", "SuccessCount",
// "FailedFindings": [{"Id", "ErrorCode", "ErrorMessage"}]}.
type fakeHub struct {
	srv *httptest.Server

	mu     sync.Mutex
	calls  []call
	refuse map[string][2]string // finding id -> error code, message ("" = member left out)
	forced []answer             // consumed in order, the last one stays
}

func newFakeHub(t *testing.T) *fakeHub {
	t.Helper()
	h := &fakeHub{refuse: map[string][2]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *fakeHub) force(answers ...answer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.forced = answers
}

func (h *fakeHub) refuseID(id, code, message string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refuse[id] = [2]string{code, message}
}

func (h *fakeHub) received() []call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call(nil), h.calls...)
}

func awsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.Header().Set("X-Amzn-RequestId", "req-"+code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Code": code, "Message": msg})
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	c := call{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), raw: raw}
	var body struct {
		Findings []map[string]any `json:"Findings"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	decErr := dec.Decode(&body)
	c.findings = body.Findings

	h.mu.Lock()
	h.calls = append(h.calls, c)
	var forced *answer
	if len(h.forced) > 0 {
		forced = &h.forced[0]
		if len(h.forced) > 1 {
			h.forced = h.forced[1:]
		}
	}
	refuse := h.refuse
	h.mu.Unlock()

	if r.Method != http.MethodPost || r.URL.Path != "/findings/import" {
		awsError(w, http.StatusNotFound, "ResourceNotFoundException", "no such operation")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="+testKeyID+"/") {
		awsError(w, http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	if forced != nil {
		for k, v := range forced.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(forced.status)
		_, _ = io.WriteString(w, forced.body)
		return
	}
	if decErr != nil || len(body.Findings) == 0 || len(body.Findings) > 100 {
		awsError(w, http.StatusBadRequest, "InvalidInputException", fmt.Sprintf("Invalid parameter 'Findings' (%d findings, %v)", len(body.Findings), decErr))
		return
	}
	type failed struct {
		ID           string  `json:"Id"`
		ErrorCode    *string `json:"ErrorCode,omitempty"`
		ErrorMessage *string `json:"ErrorMessage,omitempty"`
	}
	out := struct {
		FailedCount    int      `json:"FailedCount"`
		SuccessCount   int      `json:"SuccessCount"`
		FailedFindings []failed `json:"FailedFindings"`
	}{FailedFindings: []failed{}}
	for _, f := range body.Findings {
		id, _ := f["Id"].(string)
		if e, ok := refuse[id]; ok {
			ff := failed{ID: id}
			if e[0] != "" {
				ff.ErrorCode = &e[0]
			}
			if e[1] != "" {
				ff.ErrorMessage = &e[1]
			}
			out.FailedFindings = append(out.FailedFindings, ff)
			out.FailedCount++
			continue
		}
		out.SuccessCount++
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-RequestId", "req-ok")
	_ = json.NewEncoder(w).Encode(out)
}

// trivyASFF returns Trivy's ASFF output (`trivy image --format template
// --template @contrib/asff.tpl`) for image with n findings.
func trivyASFF(image string, n int) []byte {
	pkgs := []string{"openssl", "curl", "busybox", "zlib", "musl"}
	sev := []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}
	var findings []map[string]any
	for i := range n {
		cve := fmt.Sprintf("CVE-2023-%05d", 1000+i)
		pkg := pkgs[i%len(pkgs)]
		findings = append(findings, map[string]any{
			"SchemaVersion": "2018-10-08",
			"Id":            image + " (alpine 3.18.2)/" + cve,
			"ProductArn":    "arn:aws:securityhub:" + testRegion + "::product/aquasecurity/aquasecurity",
			"GeneratorId":   "Trivy/" + cve,
			"AwsAccountId":  "123456789012",
			"Types":         []string{"Software and Configuration Checks/Vulnerabilities/CVE"},
			"CreatedAt":     "2024-03-01T12:00:00.123456789Z",
			"UpdatedAt":     "2024-03-01T12:00:00.123456789Z",
			"Severity":      map[string]any{"Label": sev[i%len(sev)]},
			"Title":         "Trivy found a vulnerability to " + cve + " in container " + image + ", related to " + pkg,
			"Description":   pkg + ": heap overflow when parsing <crafted> input & more",
			"Remediation": map[string]any{"Recommendation": map[string]any{
				"Text": "More information on this vulnerability is provided in the hyperlink",
				"Url":  "https://avd.aquasec.com/nvd/" + strings.ToLower(cve),
			}},
			"ProductFields": map[string]any{"Product Name": "Trivy"},
			"Resources": []map[string]any{{
				"Type": "Container", "Id": image, "Partition": "aws", "Region": testRegion,
				"Details": map[string]any{
					"Container": map[string]any{"ImageName": image},
					"Other": map[string]any{
						"CVE ID": cve, "CVE Title": pkg + " heap overflow", "PkgName": pkg,
						"Installed Package": "1.0.0-r0", "Patched Package": "1.0.0-r1",
						"NvdCvssScoreV3": "9.8", "NvdCvssVectorV3": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
					},
				},
			}},
			"RecordState": "ACTIVE",
		})
	}
	b, err := json.Marshal(map[string]any{"Findings": findings})
	if err != nil {
		panic(err)
	}
	return b
}

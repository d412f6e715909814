package template

import (
	"context"
	_ "embed"
	"fmt"
	"testing"

	"github.com/postee-dev/postee/internal/testevents"
)

// vulsref is the Rego that built postee.lib.vuls.vulnerabilities before the
// vulnlist builtin.
//
//go:embed testdata/vulsref.rego
var vulsref string

// TestVulnlistMatchesRego checks the vulnlist builtin against the Rego it
// replaced, on the generated reports and on odd ones: the same list, in the
// same order.
func TestVulnlistMatchesRego(t *testing.T) {
	r := compile(t, Spec{Name: "vulsref", Body: vulsref})
	events := map[string][]byte{}
	for _, n := range []int{0, 1, 7, 20, 300} {
		events[fmt.Sprintf("trivy-%d", n)] = testevents.TrivyReport("registry.example.com/team/web:1.4.2", n)
		events[fmt.Sprintf("aqua-%d", n)] = testevents.AquaScan("registry.example.com/team/web:1.4.2", n)
		events[fmt.Sprintf("operator-%d", n)] = testevents.TrivyOperatorReport("default", "web", n)
	}
	events["evil aqua"] = evilAquaScan()
	odd := map[string]string{
		"trivy results object":       `{"ArtifactName": "a", "Results": {"x": {"Target": "t", "Vulnerabilities": [{"VulnerabilityID": "CVE-1"}]}}}`,
		"trivy odd vulnerabilities":  `{"ArtifactName": "a", "Results": [{"Target": 3, "Type": "npm", "Vulnerabilities": ["s", 1, null, {"VulnerabilityID": 7}, {"VulnerabilityID": "GHSA-x y", "Severity": "Moderate", "PrimaryURL": "HTTP://x", "PkgIdentifier": "p"}, {"VulnerabilityID": "GHSA-a/b c", "Severity": "critical"}, {"VulnerabilityID": "CVE-2", "PkgIdentifier": {"PURL": "pkg:npm/a@1"}, "Title": "", "Description": "a\nb\tc"}]}, "r", {"Vulnerabilities": {"k": {"VulnerabilityID": "Z", "Severity": "none"}}}, {"Target": "t", "Vulnerabilities": "x"}]}`,
		"trivy ties":                 `{"ArtifactName": "a", "Results": [{"Target": "t", "Vulnerabilities": [{"VulnerabilityID": "A", "PkgName": "p", "InstalledVersion": "2"}, {"VulnerabilityID": "A", "PkgName": "p", "InstalledVersion": "1"}, {"VulnerabilityID": "A", "PkgName": "p", "InstalledVersion": "1"}, {"VulnerabilityID": "A", "PkgName": "p", "Severity": "HIGH"}]}]}`,
		"trivy set of vulns":         `{"Results": [{"Target": "t", "Vulnerabilities": [{"VulnerabilityID": "B"}, {"VulnerabilityID": "A"}]}]}`,
		"aqua odd resources":         `{"image": "i", "resources": [{"resource": "x", "vulnerabilities": ["s", {"name": "CVE-1", "version": "", "installed_version": "2", "nvd_severity": "", "vendor_severity": "IMPORTANT", "nvd_url": "ftp://x", "vendor_url": "https://v"}]}, {"vulnerabilities": [{"name": 1, "title": "t\r\n"}]}, {"resource": {"name": "p", "version": "9", "path": "/a", "format": "deb", "license": "MIT"}, "vulnerabilities": {"a": {"name": "X"}}}, 5]}`,
		"aqua no resources":          `{"image": "i"}`,
		"operator odd":               `{"kind": "VulnerabilityReport", "report": {"vulnerabilities": [{"vulnerabilityID": "CVE-9", "severity": "LOW", "title": "", "description": "d", "packageType": "", "pkgType": "gem", "primaryLink": "javascript:x"}, "x", {"title": "only"}]}}`,
		"operator report not object": `{"kind": "VulnerabilityReport", "report": [1]}`,
		"not a report":               `{"SigMetadata": {}}`,
	}
	for name, raw := range odd {
		events[name] = []byte(raw)
	}
	for name, ev := range events {
		t.Run(name, func(t *testing.T) {
			m, err := r.Render(context.Background(), Input(parse(t, ev), ""))
			if err != nil {
				t.Fatal(err)
			}
			if m.Description != m.Summary {
				t.Errorf("vulnlist differs from the Rego it replaced\nrego:     %s\nvulnlist: %s", m.Description, m.Summary)
			}
		})
	}
}

package testevents

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// finding is one generated vulnerability, before it is laid out in a
// scanner's format.
type finding struct {
	id, severity, title, description string
	pkg                              osPackage
	installed, fixed                 string
}

// osPackage is a package a generated image contains.
type osPackage struct {
	name, version, class, typ, target, purlType, license string
}

// The packages of the generated images: OS packages of an Alpine image,
// npm packages of a Node.js application and Go modules of a binary.
var imagePackages = []osPackage{
	{"openssl", "3.1.0-r4", "os-pkgs", "alpine", "", "apk", "Apache-2.0"},
	{"busybox", "1.36.0-r9", "os-pkgs", "alpine", "", "apk", "GPL-2.0-only"},
	{"libxml2", "2.11.4-r0", "os-pkgs", "alpine", "", "apk", "MIT"},
	{"curl", "8.1.2-r0", "os-pkgs", "alpine", "", "apk", "curl"},
	{"express", "4.17.1", "lang-pkgs", "npm", "app/package-lock.json", "npm", "MIT"},
	{"semver", "7.3.7", "lang-pkgs", "npm", "app/package-lock.json", "npm", "ISC"},
	{"golang.org/x/net", "v0.7.0", "lang-pkgs", "gobinary", "usr/local/bin/healthcheck", "golang", "BSD-3-Clause"},
	{"stdlib", "1.20.4", "lang-pkgs", "gobinary", "usr/local/bin/healthcheck", "golang", "BSD-3-Clause"},
}

// Titles as scanners write them; some carry characters that markup
// languages treat specially (<, &, |, [, *), as real advisories do.
var titles = []string{
	"%s: heap overflow when parsing crafted input",
	"%s: out-of-bounds read in <certificate> checks",
	"%s: use-after-free on malformed headers & trailers",
	"%s: integer overflow in length check | DoS",
	"%s: NULL pointer dereference [CWE-476] on *empty* records",
	"%s: memory exhaustion with deeply nested documents",
}

var scannerSeverities = []string{"CRITICAL", "HIGH", "HIGH", "MEDIUM", "MEDIUM", "MEDIUM", "LOW", "LOW", "UNKNOWN"}

// findings returns n deterministic findings spread over the image's
// packages; every third one has no fixed version, every fourth language
// finding is a GitHub advisory (GHSA) rather than a CVE.
func findings(n int) []finding {
	out := make([]finding, 0, n)
	for i := range n {
		p := imagePackages[(i*3+i/len(imagePackages))%len(imagePackages)]
		id := fmt.Sprintf("CVE-%d-%d", 2020+i%4, 20000+(i*7907)%79999)
		if p.class == "lang-pkgs" && i%4 == 1 {
			id = fmt.Sprintf("GHSA-%s-%s-%s", code(i, 0), code(i, 1), code(i, 2))
		}
		fixed := ""
		if i%3 != 2 {
			fixed = bumpVersion(p.version)
		}
		out = append(out, finding{
			id:          id,
			severity:    scannerSeverities[i%len(scannerSeverities)],
			title:       fmt.Sprintf(titles[i%len(titles)], p.name),
			description: weaknesses[i%len(weaknesses)] + " in " + p.name + " allows a remote attacker to cause a denial of service or possibly execute code.",
			pkg:         p,
			installed:   p.version,
			fixed:       fixed,
		})
	}
	return out
}

// code returns 4 deterministic base-32 characters, as in GHSA ids.
func code(i, part int) string {
	const alphabet = "23456789cfghjmpqrvwx"
	sum := sha256.Sum256(fmt.Appendf(nil, "ghsa:%d:%d", i, part))
	var b [4]byte
	for k := range b {
		b[k] = alphabet[int(sum[k])%len(alphabet)]
	}
	return string(b[:])
}

// bumpVersion returns a plausible fixed version.
func bumpVersion(v string) string {
	if strings.Contains(v, "-r") {
		return bump(v)
	}
	parts := strings.Split(v, ".")
	last := parts[len(parts)-1]
	n := 0
	fmt.Sscanf(last, "%d", &n)
	parts[len(parts)-1] = fmt.Sprint(n + 1)
	return strings.Join(parts, ".")
}

func advisoryURL(id string) string {
	if strings.HasPrefix(id, "GHSA-") {
		return "https://github.com/advisories/" + id
	}
	return "https://avd.aquasec.com/nvd/" + strings.ToLower(id)
}

func purl(p osPackage) string {
	switch p.purlType {
	case "apk":
		return fmt.Sprintf("pkg:apk/alpine/%s@%s?arch=x86_64&distro=3.18.2", p.name, p.version)
	case "golang":
		return fmt.Sprintf("pkg:golang/%s@%s", p.name, p.version)
	}
	return fmt.Sprintf("pkg:%s/%s@%s", p.purlType, p.name, p.version)
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TrivyReport returns the JSON report of `trivy image --format json` (schema
// version 2) for image with vulns vulnerabilities, compact. The
// vulnerabilities are spread over OS packages (Alpine), npm packages of a
// package-lock.json and Go modules of a binary: one result per target, as
// Trivy writes them. The output is the same for the same arguments.
func TrivyReport(image string, vulns int) []byte {
	type layer struct {
		DiffID string `json:"DiffID"`
	}
	type cvss struct {
		V3Vector string  `json:"V3Vector"`
		V3Score  float64 `json:"V3Score"`
	}
	type vuln struct {
		VulnerabilityID  string            `json:"VulnerabilityID"`
		PkgID            string            `json:"PkgID,omitempty"`
		PkgName          string            `json:"PkgName"`
		PkgIdentifier    map[string]string `json:"PkgIdentifier"`
		InstalledVersion string            `json:"InstalledVersion"`
		FixedVersion     string            `json:"FixedVersion,omitempty"`
		Status           string            `json:"Status"`
		Layer            layer             `json:"Layer"`
		SeveritySource   string            `json:"SeveritySource"`
		PrimaryURL       string            `json:"PrimaryURL"`
		DataSource       map[string]string `json:"DataSource"`
		Title            string            `json:"Title"`
		Description      string            `json:"Description"`
		Severity         string            `json:"Severity"`
		CweIDs           []string          `json:"CweIDs"`
		CVSS             map[string]cvss   `json:"CVSS"`
		References       []string          `json:"References"`
		PublishedDate    string            `json:"PublishedDate"`
		LastModifiedDate string            `json:"LastModifiedDate"`
	}
	type result struct {
		Target          string `json:"Target"`
		Class           string `json:"Class"`
		Type            string `json:"Type"`
		Vulnerabilities []vuln `json:"Vulnerabilities,omitempty"`
	}
	type report struct {
		SchemaVersion int            `json:"SchemaVersion"`
		CreatedAt     string         `json:"CreatedAt"`
		ArtifactName  string         `json:"ArtifactName"`
		ArtifactType  string         `json:"ArtifactType"`
		Metadata      map[string]any `json:"Metadata"`
		Results       []result       `json:"Results"`
	}
	repo, _, _ := strings.Cut(image, ":")
	imageID := digestOf("image-id:" + image)
	diffIDs := []string{digestOf("layer-0:" + image), digestOf("layer-1:" + image), digestOf("layer-2:" + image)}
	r := report{
		SchemaVersion: 2,
		CreatedAt:     "2024-03-01T12:00:00.123456789Z",
		ArtifactName:  image,
		ArtifactType:  "container_image",
		Metadata: map[string]any{
			"OS":          map[string]string{"Family": "alpine", "Name": "3.18.2"},
			"ImageID":     imageID,
			"DiffIDs":     diffIDs,
			"RepoTags":    []string{image},
			"RepoDigests": []string{repo + "@" + digestOf("repo-digest:"+image)},
		},
	}
	index := map[string]int{}
	targetOf := func(p osPackage) string {
		if p.class == "os-pkgs" {
			return image + " (alpine 3.18.2)"
		}
		return p.target
	}
	// Results in Trivy's order: the OS first, then the language targets.
	for _, p := range imagePackages {
		t := targetOf(p)
		if _, ok := index[t]; !ok {
			index[t] = len(r.Results)
			r.Results = append(r.Results, result{Target: t, Class: p.class, Type: p.typ})
		}
	}
	for i, f := range findings(vulns) {
		status := "fixed"
		if f.fixed == "" {
			status = "affected"
		}
		source := map[string]string{"ID": "alpine", "Name": "Alpine Secdb", "URL": "https://secdb.alpinelinux.org/"}
		switch f.pkg.typ {
		case "npm":
			source = map[string]string{"ID": "ghsa", "Name": "GitHub Security Advisory npm", "URL": "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Anpm"}
		case "gobinary":
			source = map[string]string{"ID": "govulndb", "Name": "The Go Vulnerability Database", "URL": "https://pkg.go.dev/vuln/"}
		}
		score := []float64{9.8, 7.5, 7.5, 5.3, 5.5, 6.1, 3.7, 3.1, 0}[i%9]
		v := vuln{
			VulnerabilityID:  f.id,
			PkgID:            f.pkg.name + "@" + f.installed,
			PkgName:          f.pkg.name,
			PkgIdentifier:    map[string]string{"PURL": purl(f.pkg)},
			InstalledVersion: f.installed,
			FixedVersion:     f.fixed,
			Status:           status,
			Layer:            layer{DiffID: diffIDs[i%len(diffIDs)]},
			SeveritySource:   "nvd",
			PrimaryURL:       advisoryURL(f.id),
			DataSource:       source,
			Title:            f.title,
			Description:      f.description,
			Severity:         f.severity,
			CweIDs:           []string{fmt.Sprintf("CWE-%d", []int{787, 125, 416, 190, 476, 400}[i%6])},
			CVSS:             map[string]cvss{"nvd": {V3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", V3Score: score}},
			References:       []string{advisoryURL(f.id), "https://security.example.org/advisories/" + f.id},
			PublishedDate:    fmt.Sprintf("%d-0%d-1%dT15:15:00Z", 2020+i%4, 1+i%9, i%10),
			LastModifiedDate: "2024-02-01T10:00:00Z",
		}
		if f.pkg.typ != "alpine" {
			v.PkgID = ""
		}
		k := index[targetOf(f.pkg)]
		r.Results[k].Vulnerabilities = append(r.Results[k].Vulnerabilities, v)
	}
	return mustMarshal(r)
}

// TrivyOperatorReport returns a VulnerabilityReport custom resource as
// Trivy Operator posts it to a webhook, for container "web" of a
// ReplicaSet of Deployment name in namespace, with vulns vulnerabilities
// (Trivy Operator lists them flat, without targets). Compact JSON, the same
// for the same arguments.
func TrivyOperatorReport(namespace, name string, vulns int) []byte {
	type vuln struct {
		VulnerabilityID  string   `json:"vulnerabilityID"`
		Resource         string   `json:"resource"`
		InstalledVersion string   `json:"installedVersion"`
		FixedVersion     string   `json:"fixedVersion"`
		Severity         string   `json:"severity"`
		Score            float64  `json:"score,omitempty"`
		Title            string   `json:"title"`
		PrimaryLink      string   `json:"primaryLink"`
		Links            []string `json:"links"`
		Target           string   `json:"target"`
		PublishedDate    string   `json:"publishedDate"`
		LastModifiedDate string   `json:"lastModifiedDate"`
	}
	replicaSet := name + "-6d4cf56db6"
	summary := map[string]int{"criticalCount": 0, "highCount": 0, "mediumCount": 0, "lowCount": 0, "noneCount": 0, "unknownCount": 0}
	list := []vuln{}
	for i, f := range findings(vulns) {
		switch f.severity {
		case "CRITICAL":
			summary["criticalCount"]++
		case "HIGH":
			summary["highCount"]++
		case "MEDIUM":
			summary["mediumCount"]++
		case "LOW":
			summary["lowCount"]++
		default:
			summary["unknownCount"]++
		}
		list = append(list, vuln{
			VulnerabilityID:  f.id,
			Resource:         f.pkg.name,
			InstalledVersion: f.installed,
			FixedVersion:     f.fixed,
			Severity:         f.severity,
			Score:            []float64{9.8, 7.5, 7.5, 5.3, 5.5, 6.1, 3.7, 3.1, 0}[i%9],
			Title:            f.title,
			PrimaryLink:      advisoryURL(f.id),
			Links:            []string{},
			Target:           f.pkg.target,
			PublishedDate:    fmt.Sprintf("%d-0%d-1%dT15:15:00Z", 2020+i%4, 1+i%9, i%10),
			LastModifiedDate: "2024-02-01T10:00:00Z",
		})
	}
	report := map[string]any{
		"apiVersion": "aquasecurity.github.io/v1alpha1",
		"kind":       "VulnerabilityReport",
		"metadata": map[string]any{
			"name":              "replicaset-" + replicaSet + "-web",
			"namespace":         namespace,
			"uid":               uuidOf("vulnerabilityreport:" + namespace + "/" + name),
			"resourceVersion":   "918273",
			"creationTimestamp": "2024-03-01T12:00:00Z",
			"labels": map[string]string{
				"resource-spec-hash":                "5d7b9c8f6",
				"trivy-operator.container.name":     "web",
				"trivy-operator.resource.kind":      "ReplicaSet",
				"trivy-operator.resource.name":      replicaSet,
				"trivy-operator.resource.namespace": namespace,
			},
			"ownerReferences": []map[string]any{{
				"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replicaSet,
				"uid": uuidOf("replicaset:" + namespace + "/" + replicaSet), "controller": true, "blockOwnerDeletion": false,
			}},
		},
		"report": map[string]any{
			"artifact":        map[string]string{"repository": "team/" + name, "tag": "1.4.2", "digest": digestOf("operator:" + name)},
			"os":              map[string]string{"family": "alpine", "name": "3.18.2"},
			"registry":        map[string]string{"server": "registry.example.com"},
			"scanner":         map[string]string{"name": "Trivy", "vendor": "Aqua Security", "version": "0.50.1"},
			"summary":         summary,
			"updateTimestamp": "2024-03-01T12:00:00Z",
			"vulnerabilities": list,
		},
	}
	return mustMarshal(report)
}

func uuidOf(s string) string {
	h := hex.EncodeToString(func() []byte { b := sha256.Sum256([]byte(s)); return b[:16] }())
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// AquaScan returns an image scan result as Aqua Enterprise posts it to a
// webhook: vulnerabilities grouped by resource, with Aqua and NVD
// severities, fix versions and NVD links, the vulnerability summary, the
// image assurance checks, and scan_started as a protobuf timestamp. Compact
// JSON, the same for the same arguments.
func AquaScan(image string, vulns int) []byte {
	type vuln struct {
		Name           string  `json:"name"`
		Description    string  `json:"description"`
		NVDScore       float64 `json:"nvd_score"`
		NVDSeverity    string  `json:"nvd_severity"`
		NVDURL         string  `json:"nvd_url"`
		VendorURL      string  `json:"vendor_url,omitempty"`
		FixVersion     string  `json:"fix_version,omitempty"`
		Solution       string  `json:"solution,omitempty"`
		AquaScore      float64 `json:"aqua_score"`
		AquaSeverity   string  `json:"aqua_severity"`
		AquaVectors    string  `json:"aqua_vectors"`
		AquaScoring    string  `json:"aqua_scoring_system"`
		PublishDate    string  `json:"publish_date"`
		Modification   string  `json:"modification_date"`
		Classification string  `json:"aqua_severity_classification"`
	}
	type resource struct {
		Resource        map[string]string `json:"resource"`
		Vulnerabilities []vuln            `json:"vulnerabilities"`
	}
	aquaSeverity := map[string]string{"CRITICAL": "critical", "HIGH": "high", "MEDIUM": "medium", "LOW": "low", "UNKNOWN": "negligible"}
	summary := map[string]any{"total": 0, "critical": 0, "high": 0, "medium": 0, "low": 0, "negligible": 0,
		"sensitive": 0, "malware": 0, "score_average": 6.4, "max_score": 9.8, "max_fixable_score": 9.8, "max_fixable_severity": "critical"}
	var resources []resource
	index := map[string]int{}
	for i, f := range findings(vulns) {
		sev := aquaSeverity[f.severity]
		summary[sev] = summary[sev].(int) + 1
		summary["total"] = summary["total"].(int) + 1
		v := vuln{
			Name:           f.id,
			Description:    f.description,
			NVDScore:       []float64{9.8, 7.5, 7.5, 5.3, 5.5, 6.1, 3.7, 3.1, 0}[i%9],
			NVDSeverity:    sev,
			NVDURL:         "https://nvd.nist.gov/vuln/detail/" + f.id,
			FixVersion:     f.fixed,
			AquaScore:      []float64{9.8, 7.5, 7.5, 5.3, 5.5, 6.1, 3.7, 3.1, 0}[i%9],
			AquaSeverity:   sev,
			AquaVectors:    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
			AquaScoring:    "CVSS V3",
			PublishDate:    fmt.Sprintf("%d-0%d-1%d", 2020+i%4, 1+i%9, i%10),
			Modification:   "2024-02-01",
			Classification: "NVD CVSS V3 Score: " + fmt.Sprint([]float64{9.8, 7.5, 7.5, 5.3, 5.5, 6.1, 3.7, 3.1, 0}[i%9]),
		}
		if strings.HasPrefix(f.id, "GHSA-") {
			v.NVDURL = ""
			v.VendorURL = "https://github.com/advisories/" + f.id
		}
		if f.fixed != "" {
			v.Solution = fmt.Sprintf("Upgrade package %s to version %s or above.", f.pkg.name, f.fixed)
		}
		k, ok := index[f.pkg.name]
		if !ok {
			k = len(resources)
			index[f.pkg.name] = k
			res := map[string]string{"format": f.pkg.purlType, "name": f.pkg.name, "version": f.pkg.version,
				"arch": "x86_64", "license": f.pkg.license, "cpe": "pkg:/" + f.pkg.purlType + ":" + f.pkg.name + ":" + f.pkg.version}
			if f.pkg.target != "" {
				res["path"] = "/" + f.pkg.target
			}
			resources = append(resources, resource{Resource: res})
		}
		resources[k].Vulnerabilities = append(resources[k].Vulnerabilities, v)
	}
	registry, repo := "Docker Hub", image
	if before, after, ok := strings.Cut(image, "/"); ok && strings.ContainsAny(before, ".:") {
		registry, repo = before, after
	}
	scan := map[string]any{
		"image":         repo,
		"registry":      registry,
		"digest":        digestOf("aqua:" + image),
		"image_id":      4711,
		"os":            "alpine",
		"version":       "3.18.2",
		"scan_started":  map[string]int64{"seconds": 1709294400, "nanos": 123456789},
		"scan_duration": 7,
		"scan_options": map[string]any{
			"scan_executables": true, "show_will_not_fix": true, "scan_sensitive_data": true,
			"scan_malware": true, "scan_files": true, "scan_timeout": 3600000000000,
		},
		"vulnerability_summary": summary,
		"image_assurance_results": map[string]any{
			"disallowed": summary["critical"].(int) > 0,
			"checks_performed": []map[string]any{
				{"policy_name": "Default", "control": "max_severity", "failed": summary["critical"].(int) > 0, "maximum_severity_allowed": "high"},
				{"policy_name": "Default", "control": "malware", "failed": false},
				{"policy_name": "Production", "control": "root_user", "failed": true},
			},
		},
		"resources":                resources,
		"initiating_user":          "ci-pipeline",
		"application_scope":        []string{"team-web"},
		"application_scope_owners": []string{"web-owner@example.com"},
		"security_feeds_used":      []string{"aqua", "nvd"},
	}
	return mustMarshal(scan)
}

// AquaIncident returns a runtime incident as Aqua Enterprise posts it
// (compact JSON, deterministic).
func AquaIncident(name string) []byte {
	return mustMarshal(map[string]any{
		"name":                     name,
		"category":                 "Drift prevention",
		"severity":                 "high",
		"severity_score":           3,
		"time":                     1709294400,
		"host":                     "node-1",
		"hostname":                 "node-1",
		"hostip":                   "10.0.7.11",
		"container":                "web-6d4cf56db6-x2x7k_web",
		"containerid":              "7f3e8c1d2b4a5968a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4",
		"image":                    "registry.example.com/team/web:1.4.2",
		"podname":                  "web-6d4cf56db6-x2x7k",
		"podnamespace":             "default",
		"data":                     `{"blocked":true,"executable":"/tmp/xmrig","reason":"Executable not in the image","user":"root"}`,
		"response_policy_name":     "Default Runtime Policy",
		"response_policy_type":     "container",
		"application_scope":        "team-web",
		"application_scope_owners": []string{"web-owner@example.com"},
		"type":                     "detect",
		"action":                   "Block",
	})
}

// AquaInsight returns a risk insight as Aqua's Cloud Security posts it
// (compact JSON, deterministic).
func AquaInsight(id string) []byte {
	return mustMarshal(map[string]any{
		"insight": map[string]any{
			"id":          id,
			"description": "Publicly exposed workload with critical vulnerabilities that have a known exploit",
			"impact":      "An attacker could run code in the workload and move into the cluster",
			"priority":    4,
		},
		"resource": map[string]any{
			"id":           "i-0f2c4e6a8b0d1f3a5",
			"name":         "web-frontend",
			"arn":          "arn:aws:ec2:eu-west-1:123456789012:instance/i-0f2c4e6a8b0d1f3a5",
			"type":         "Virtual Machine",
			"found_date":   "2024-03-01T11:00:00Z",
			"last_scanned": "2024-03-01T12:00:00Z",
			"steps":        "Internet > Load balancer > web-frontend",
		},
		"evidence": map[string]any{
			"vulnerabilities": []map[string]any{
				{"name": "CVE-2023-38545", "severity": "critical", "package_name": "curl", "current_version": "8.1.2-r0", "fix_version": "8.4.0-r0"},
				{"name": "CVE-2023-5363", "severity": "high", "package_name": "openssl", "current_version": "3.1.0-r4", "fix_version": "3.1.4-r0"},
			},
			"sensitive_data": []map[string]any{
				{"file_type": "private key", "file_path": "/etc/ssl/private/server.key", "image": "registry.example.com/team/web:1.4.2"},
			},
		},
		"response_policy_name":     "Insights to ServiceNow",
		"application_scope":        []string{"team-web"},
		"application_scope_owners": []string{"web-owner@example.com"},
	})
}

package filters

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/route"
	"github.com/postee-dev/postee/internal/testevents"
)

// wantNames are the names the original postee's users write in input-files.
var wantNames = []string{
	"Allow-Image-Name.rego",
	"Ignore-Image-Name.rego",
	"Allow-Registry.rego",
	"Ignore-Registry.rego",
	"Policy-Min-Vulnerability.rego",
	"Policy-Only-Fix-Available.rego",
	"Policy-Related-Features.rego",
	"Initial Access",
	"Credential Access",
	"Privilege Escalation",
	"Defense Evasion",
	"Persistence",
	"Tracee Default Set",
	"Trivy AWS Findings",
}

func TestNames(t *testing.T) {
	var want []string
	for _, n := range wantNames {
		want = append(want, strings.TrimSuffix(n, ".rego")+".rego")
	}
	sort.Strings(want)
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %q\nwant %q", got, want)
	}
	names := Names()
	names[0] = "changed"
	if Names()[0] == "changed" {
		t.Error("Names returns the package's own slice")
	}
	for _, n := range wantNames {
		base := strings.TrimSuffix(n, ".rego")
		src1, ok1 := Bundled(base)
		src2, ok2 := Bundled(base + ".rego")
		if !ok1 || !ok2 || src1 != src2 || src1 == "" {
			t.Errorf("Bundled(%q) = %t, Bundled(%q) = %t; want the same non-empty source", base, ok1, base+".rego", ok2)
		}
	}
	for _, n := range []string{"", ".rego", "Nope", "Nope.rego", "Initial Access.rego.rego", "initial access", "bundled/Persistence.rego", "../filters.go"} {
		if _, ok := Bundled(n); ok {
			t.Errorf("Bundled(%q) found a file", n)
		}
	}
}

// The repository's rego-filters/ (the default REGO_FILTERS_PATH) holds the
// same files as bundled/.
func TestRepositoryCopies(t *testing.T) {
	dir := filepath.Join("..", "..", "rego-filters")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".rego") {
			onDisk = append(onDisk, e.Name())
		}
	}
	if !slices.Equal(onDisk, Names()) {
		t.Errorf("rego-filters/ has %q, bundled/ has %q; run go generate ./core/filters", onDisk, Names())
	}
	// Each name resolves as postee resolves input-files: the name as
	// written, else with ".rego" added.
	for _, n := range wantNames {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			if _, err := os.Stat(filepath.Join(dir, n+".rego")); err != nil {
				t.Errorf("input-files: [%q] does not resolve in rego-filters/", n)
			}
		}
	}
	for _, n := range Names() {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			continue // reported above
		}
		if src, _ := Bundled(n); !bytes.Equal(data, []byte(src)) {
			t.Errorf("rego-filters/%s differs from core/filters/bundled/%s; run go generate ./core/filters", n, n)
		}
	}
}

// Every file parses and compiles as Rego v1 and as v0 (thanks to `import
// rego.v1`), defines allow in package postee, and is commented.
func TestModules(t *testing.T) {
	for _, n := range Names() {
		src, _ := Bundled(n)
		for _, v := range []ast.RegoVersion{ast.RegoV1, ast.RegoV0} {
			mod, err := ast.ParseModuleWithOpts(n, src, ast.ParserOptions{RegoVersion: v, ProcessAnnotation: true})
			if err != nil {
				t.Errorf("%s (%v): %v", n, v, err)
				continue
			}
			c := ast.NewCompiler().WithDefaultRegoVersion(v)
			c.Compile(map[string]*ast.Module{n: mod})
			if c.Failed() {
				t.Errorf("%s (%v): %v", n, v, c.Errors)
				continue
			}
			if got := mod.Package.Path.String(); got != "data.postee" {
				t.Errorf("%s: package %s, want postee", n, got)
			}
			if len(c.GetRulesExact(ast.MustParseRef("data.postee.allow"))) == 0 {
				t.Errorf("%s: no allow rule", n)
			}
		}
		if !strings.HasPrefix(src, "# "+n) {
			t.Errorf("%s: does not start with a comment naming the file", n)
		}
		if !strings.Contains(src, "# --- edit below") || !strings.Contains(src, "# --- end of settings") {
			t.Errorf("%s: no marked settings section", n)
		}
		if strings.Contains(src, "\r") || !strings.HasSuffix(src, "\n") || strings.HasSuffix(src, "\n\n") {
			t.Errorf("%s: want LF line ends and one final newline", n)
		}
	}
}

// Every file is as `opa fmt` writes it, for both Rego versions, so that
// users who format their edited copies get small diffs.
func TestFormatted(t *testing.T) {
	for _, n := range Names() {
		src, _ := Bundled(n)
		for _, v := range []ast.RegoVersion{ast.RegoV1, ast.RegoV0CompatV1} {
			out, err := format.SourceWithOpts(n, []byte(src), format.Opts{RegoVersion: v})
			if err != nil {
				t.Errorf("%s (%v): %v", n, v, err)
			} else if string(out) != src {
				t.Errorf("%s is not formatted as opa fmt (%v) would:\n%s", n, v, out)
			}
		}
	}
}

// Events, named by a letter in the tables below.
var events = map[string]string{
	// Aqua scan of registry.example.com/team/alpine:3.18: 3 critical, 5 high,
	// ... with fixes.
	"A": string(testevents.Trivy(1, 20)),
	// The same image, no vulnerabilities.
	"B": string(testevents.Trivy(2, 0)),
	// Aqua, Docker Hub nginx, medium and low only; the medium one is fixable.
	"C": `{"image":"nginx:1.25","registry":"Docker Hub","digest":"sha256:aa",
		"vulnerability_summary":{"total":3,"critical":0,"high":0,"medium":1,"low":2,"negligible":0,"score_average":4.2,"malware":0},
		"resources":[{"resource":{"name":"libc","version":"2.36"},"vulnerabilities":[
			{"name":"CVE-2024-1","aqua_severity":"low","nvd_severity":"high","fix_version":""},
			{"name":"CVE-2024-2","aqua_severity":"medium","fix_version":"2.36-9"},
			{"name":"CVE-2024-3","aqua_severity":"low"}]}]}`,
	// Aqua, busybox from a host registry: 2 high, no fix.
	"D": `{"image":"busybox:1.36","registry":"Host Images",
		"vulnerability_summary":{"critical":0,"high":2,"medium":0,"low":0,"negligible":0},
		"resources":[{"resource":{"name":"busybox"},"vulnerabilities":[
			{"name":"CVE-2024-4","severity":"high","fix_version":""},
			{"name":"CVE-2024-5","severity":"high","fix_version":"  "}]}]}`,
	// Trivy image report of nginx from Docker Hub: a fixable HIGH, a LOW.
	"E": `{"SchemaVersion":2,"ArtifactName":"nginx:1.25","ArtifactType":"container_image",
		"Metadata":{"RepoTags":["nginx:1.25"]},
		"Results":[{"Target":"nginx:1.25 (debian 12.4)","Class":"os-pkgs","Type":"debian","Vulnerabilities":[
			{"VulnerabilityID":"CVE-2023-1","PkgName":"openssl","InstalledVersion":"3.0.11","FixedVersion":"3.0.13","Severity":"HIGH"},
			{"VulnerabilityID":"CVE-2023-2","PkgName":"zlib","InstalledVersion":"1.2.13","Severity":"LOW"}]},
			{"Target":"app","Class":"lang-pkgs","Type":"gobinary"}]}`,
	// Trivy report of a local sandbox image, clean.
	"F": `{"ArtifactName":"localhost:5000/sandbox/tool:dev","ArtifactType":"container_image",
		"Results":[{"Target":"x","Vulnerabilities":null}]}`,
	// Trivy filesystem scan: a fixable CRITICAL, no image.
	"G": `{"ArtifactName":"/src/alpine-app","ArtifactType":"filesystem",
		"Results":[{"Target":"go.mod","Vulnerabilities":[{"VulnerabilityID":"CVE-2024-9","Severity":"CRITICAL","FixedVersion":"1.2.3"}]}]}`,
	// Tracee (tracee-rules format): Execution, Defense Evasion, Privilege Escalation.
	"H": string(testevents.Tracee("TRC-1", "node-1")),
	"I": string(testevents.Tracee("TRC-2", "node-1")),
	"J": string(testevents.Tracee("TRC-3", "node-1")),
	// Tracee, Initial Access, with no Category property.
	"K": `{"Data":{},"Context":{"hostName":"node-2","processName":"bash"},
		"SigMetadata":{"ID":"TRC-12","Name":"Illegitimate Shell",
		"Properties":{"MITRE ATT&CK":"Initial Access: Exploit Public-Facing Application","Severity":2}}}`,
	// Newer Tracee events: signature metadata under metadata.Properties.
	"L": `{"timestamp":1709294400123,"processName":"cat","eventName":"K8S TLS Certificate Theft",
		"metadata":{"Version":"1","Description":"...","Properties":{"Category":"credential-access","Severity":3,
		"Technique":"Steal Application Access Token","external_id":"T1528","signatureID":"TRC-1018","signatureName":"K8S TLS Certificate Theft"}}}`,
	"M": `{"eventName":"Kernel Module Loading","metadata":{"Properties":{"Category":"persistence","Severity":2,"signatureID":"TRC-1017"}}}`,
	// A user's own signature, Persistence.
	"N": `{"SigMetadata":{"ID":"MY-SIG-7","Name":"Cron edit","Properties":{"MITRE ATT&CK":"Persistence: Scheduled Task/Job","Severity":1}}}`,
	// Something else entirely.
	"O": `{"message":"hello","count":3}`,
	// Aqua, redis from Docker Hub, clean.
	"P": `{"image":"redis:7","registry":"Docker Hub","vulnerability_summary":{"critical":0,"high":0},"resources":[]}`,
	// Trivy report of a quay.io image, clean.
	"Q": `{"ArtifactName":"quay.io/org/app:1","Results":[]}`,
	// Trivy results in ASFF (Trivy's contrib/asff.tpl), for AWS Security Hub.
	"R": `{"Findings":[{"SchemaVersion":"2018-10-08","Id":"alpine:3.18/CVE-2024-1",
		"ProductArn":"arn:aws:securityhub:us-east-1::product/aquasecurity/aquasecurity",
		"GeneratorId":"Trivy/CVE-2024-1","Types":["Software and Configuration Checks/Vulnerabilities/CVE"],
		"ProductFields":{"Product Name":"Trivy"},"Severity":{"Label":"HIGH"},"Title":"Trivy found a vulnerability to CVE-2024-1 in container alpine:3.18"}]}`,
	// ASFF with the product name as a top-level field of the finding.
	"S": `{"Findings":[{"Id":"x","ProductName":"Trivy","Severity":{"Label":"LOW"}}]}`,
	// ASFF findings of another tool, and an empty list.
	"T": `{"Findings":[{"Id":"y","ProductFields":{"Product Name":"Inspector"}}]}`,
	"U": `{"Findings":[]}`,
}

// matches runs src on every event and returns the letters of those it
// takes, sorted; evaluation errors fail the test.
func matches(t *testing.T, name, src string) string {
	t.Helper()
	m, err := route.Compile(context.Background(), "r", "", []route.Filter{{Name: name, Source: src}})
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	var got []string
	for letter, raw := range events {
		v, err := event.Parse([]byte(raw))
		if err != nil {
			t.Fatalf("event %s: %v", letter, err)
		}
		ok, err := m.Match(context.Background(), v)
		if err != nil {
			t.Errorf("%s on event %s: %v", name, letter, err)
		}
		if ok {
			got = append(got, letter)
		}
	}
	sort.Strings(got)
	return strings.Join(got, "")
}

func TestFilters(t *testing.T) {
	tests := []struct {
		file string
		want string // letters of the events that match
	}{
		{"Allow-Image-Name.rego", "ABCE"},
		{"Ignore-Image-Name.rego", "ABCEPQ"},
		{"Allow-Registry.rego", "ABCEP"},
		{"Ignore-Registry.rego", "ABCEPQ"},
		{"Policy-Min-Vulnerability.rego", "ADEG"},
		{"Policy-Only-Fix-Available.rego", "ACEG"},
		{"Policy-Related-Features.rego", "AE"},
		{"Initial Access", "K"},
		{"Credential Access", "L"},
		{"Privilege Escalation", "J"},
		{"Defense Evasion", "I"},
		{"Persistence", "MN"},
		{"Tracee Default Set", "HIJKLM"},
		{"Trivy AWS Findings", "RS"},
	}
	if len(tests) != len(wantNames) {
		t.Fatalf("%d files tested, %d bundled", len(tests), len(wantNames))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src, ok := Bundled(tt.file)
			if !ok {
				t.Fatalf("no bundled %s", tt.file)
			}
			if got := matches(t, tt.file, src); got != tt.want {
				t.Errorf("matches events %q, want %q", got, tt.want)
			}
		})
	}
}

// The settings at the top of each file do what their comments say.
func TestEditedSettings(t *testing.T) {
	tests := []struct {
		name string
		file string
		// edits are pairs of old and new text; each old text occurs once.
		edits []string
		want  string
	}{
		{"image glob", "Allow-Image-Name.rego",
			[]string{"\t\"alpine\",\n\t\"nginx\",\n", "\t\"*/alpine:3.*\",\n"}, "AB"},
		{"image substring", "Allow-Image-Name.rego",
			[]string{"\t\"alpine\",\n\t\"nginx\",\n", "\t\"redis\",\n\t\"quay.io/org/\",\n"}, "PQ"},
		{"ignore nothing", "Ignore-Image-Name.rego",
			[]string{"\t\"busybox\",\n\t\"*/sandbox/*\",\n", ""}, "ABCDEFPQ"},
		{"registry glob, any case", "Allow-Registry.rego",
			[]string{"\t\"Docker Hub\",\n\t\"docker.io\",\n\t\"*.example.com\",\n", "\t\"LOCALHOST:*\",\n\t\"host images\",\n"}, "DF"},
		{"ignore docker hub by host", "Ignore-Registry.rego",
			[]string{"\t\"Host Images\",\n\t\"localhost:5000\",\n", "\t\"docker.io\",\n"}, "ABCDFPQ"},
		{"critical only", "Policy-Min-Vulnerability.rego",
			[]string{`min_severity := "high"`, `min_severity := "Critical"`}, "AG"},
		{"at least 4 high", "Policy-Min-Vulnerability.rego",
			[]string{"min_count := 1", "min_count := 4"}, "A"},
		{"medium", "Policy-Min-Vulnerability.rego",
			[]string{`min_severity := "high"`, `min_severity := "medium"`}, "ACDEG"},
		{"misspelt severity matches nothing", "Policy-Min-Vulnerability.rego",
			[]string{`min_severity := "high"`, `min_severity := "hihg"`}, ""},
		{"fixable high", "Policy-Only-Fix-Available.rego",
			[]string{`min_severity := "negligible"`, `min_severity := "high"`}, "AEG"},
		{"features: registry and fix", "Policy-Related-Features.rego",
			[]string{"\tPermitImageNames\n\tPermitMinVulnerability\n", "\tPermitNotIgnoredRegistries\n\tPermitOnlyFixAvailable\n"}, "ACE"},
		{"features: registries and images", "Policy-Related-Features.rego",
			[]string{"\tPermitImageNames\n\tPermitMinVulnerability\n", "\tPermitRegistries\n\tPermitNotIgnoredImages\n"}, "ABCEP"},
		{"features: fixable critical", "Policy-Related-Features.rego",
			[]string{"\tPermitImageNames\n\tPermitMinVulnerability\n", "\tPermitOnlyFixAvailable\n",
				`fix_min_severity := "negligible"`, `fix_min_severity := "critical"`}, "AG"},
		{"more tactics", "Initial Access",
			[]string{`tactics := {"Initial Access"}`, `tactics := {"Initial Access", "execution"}`}, "HK"},
		{"extra signature", "Privilege Escalation",
			[]string{"extra_signatures := set()", `extra_signatures := {"TRC-1", "MY-SIG-7"}`}, "HJN"},
		{"excluded signature", "Persistence",
			[]string{"excluded_signatures := set()", `excluded_signatures := {"TRC-1017"}`}, "N"},
		{"severity", "Credential Access",
			[]string{"min_severity := 0", "min_severity := 4"}, ""},
		{"default set, severe only", "Tracee Default Set",
			[]string{"min_severity := 0", "min_severity := 3"}, "HIJL"},
		{"default set, excluded and extra", "Tracee Default Set",
			[]string{"excluded_signatures := set()", `excluded_signatures := {"TRC-2", "TRC-3"}`,
				"extra_signatures := set()", `extra_signatures := {"MY-SIG-7"}`}, "HKLMN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, ok := Bundled(tt.file)
			if !ok {
				t.Fatalf("no bundled %s", tt.file)
			}
			for i := 0; i < len(tt.edits); i += 2 {
				if n := strings.Count(src, tt.edits[i]); n != 1 {
					t.Fatalf("%s has %q %d times, want once", tt.file, tt.edits[i], n)
				}
				src = strings.Replace(src, tt.edits[i], tt.edits[i+1], 1)
			}
			if got := matches(t, tt.file, src); got != tt.want {
				t.Errorf("matches events %q, want %q", got, tt.want)
			}
		})
	}
}

func BenchmarkFilters(b *testing.B) {
	scan, err := event.Parse(testevents.Trivy(1, 20))
	if err != nil {
		b.Fatal(err)
	}
	finding, err := event.Parse(testevents.Tracee("TRC-2", "node-1"))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []string{"Allow-Registry.rego", "Policy-Min-Vulnerability.rego", "Policy-Only-Fix-Available.rego", "Policy-Related-Features.rego", "Defense Evasion.rego"} {
		src, _ := Bundled(n)
		m, err := route.Compile(context.Background(), "r", "", []route.Filter{{Name: n, Source: src}})
		if err != nil {
			b.Fatal(err)
		}
		input := scan
		if !strings.HasPrefix(n, "Policy") && !strings.HasSuffix(n, "Registry.rego") {
			input = finding
		}
		b.Run(strings.TrimSuffix(n, ".rego"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := m.Match(context.Background(), input); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

package testevents

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/postee-dev/postee/core/event"
)

func TestTrivyReport(t *testing.T) {
	a := TrivyReport("registry.example.com/team/web:1.4.2", 12)
	if !bytes.Equal(a, TrivyReport("registry.example.com/team/web:1.4.2", 12)) {
		t.Fatal("TrivyReport is not deterministic")
	}
	var r struct {
		SchemaVersion int
		ArtifactName  string
		ArtifactType  string
		Metadata      struct{ OS struct{ Family, Name string } }
		Results       []struct {
			Target, Class, Type string
			Vulnerabilities     []struct {
				VulnerabilityID, PkgName, InstalledVersion, FixedVersion, Severity, Title, PrimaryURL string
				PkgIdentifier                                                                         struct{ PURL string }
			}
		}
	}
	if err := json.Unmarshal(a, &r); err != nil {
		t.Fatal(err)
	}
	if r.SchemaVersion != 2 || r.ArtifactName != "registry.example.com/team/web:1.4.2" || r.ArtifactType != "container_image" || r.Metadata.OS.Family != "alpine" {
		t.Errorf("header %+v", r)
	}
	classes := map[string]bool{}
	n, fixed, ghsa := 0, 0, 0
	for _, res := range r.Results {
		classes[res.Class+"/"+res.Type] = true
		for _, v := range res.Vulnerabilities {
			n++
			if v.VulnerabilityID == "" || v.PkgName == "" || v.InstalledVersion == "" || v.Severity == "" || v.Title == "" ||
				!strings.HasPrefix(v.PrimaryURL, "https://") || !strings.HasPrefix(v.PkgIdentifier.PURL, "pkg:") {
				t.Errorf("incomplete %+v", v)
			}
			if v.FixedVersion != "" {
				fixed++
			}
			if strings.HasPrefix(v.VulnerabilityID, "GHSA-") {
				ghsa++
			}
		}
	}
	if n != 12 || fixed == 0 || fixed == n || ghsa == 0 {
		t.Errorf("%d vulnerabilities, %d fixed, %d GHSA", n, fixed, ghsa)
	}
	for _, want := range []string{"os-pkgs/alpine", "lang-pkgs/npm", "lang-pkgs/gobinary"} {
		if !classes[want] {
			t.Errorf("no %s result in %v", want, classes)
		}
	}
	if _, err := event.Parse(TrivyReport("alpine:3.18", 0)); err != nil {
		t.Error(err)
	}
}

func TestTrivyOperatorReport(t *testing.T) {
	a := TrivyOperatorReport("default", "web", 10)
	if !bytes.Equal(a, TrivyOperatorReport("default", "web", 10)) {
		t.Fatal("TrivyOperatorReport is not deterministic")
	}
	var r struct {
		Kind     string
		Metadata struct {
			Name, Namespace string
			Labels          map[string]string
		}
		Report struct {
			Artifact        struct{ Repository, Tag string }
			Registry        struct{ Server string }
			Summary         map[string]int
			Vulnerabilities []struct {
				VulnerabilityID, Resource, InstalledVersion, Severity, Title, PrimaryLink string
			}
		}
	}
	if err := json.Unmarshal(a, &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "VulnerabilityReport" || r.Metadata.Namespace != "default" || r.Metadata.Labels["trivy-operator.resource.kind"] != "ReplicaSet" ||
		r.Report.Artifact.Repository != "team/web" || r.Report.Registry.Server == "" {
		t.Errorf("unexpected report %+v", r)
	}
	total := 0
	for _, n := range r.Report.Summary {
		total += n
	}
	if len(r.Report.Vulnerabilities) != 10 || total != 10 {
		t.Errorf("%d vulnerabilities, summary %v", len(r.Report.Vulnerabilities), r.Report.Summary)
	}
	for _, v := range r.Report.Vulnerabilities {
		if v.VulnerabilityID == "" || v.Resource == "" || v.InstalledVersion == "" || v.Severity == "" || v.PrimaryLink == "" {
			t.Errorf("incomplete %+v", v)
		}
	}
}

func TestAquaScan(t *testing.T) {
	a := AquaScan("registry.example.com/team/web:1.4.2", 10)
	if !bytes.Equal(a, AquaScan("registry.example.com/team/web:1.4.2", 10)) {
		t.Fatal("AquaScan is not deterministic")
	}
	var s struct {
		Image, Registry, Digest string
		Summary                 map[string]any `json:"vulnerability_summary"`
		Resources               []struct {
			Resource        struct{ Name, Version string }
			Vulnerabilities []struct {
				Name         string
				AquaSeverity string `json:"aqua_severity"`
				NVDURL       string `json:"nvd_url"`
				VendorURL    string `json:"vendor_url"`
			}
		}
		ScanStarted struct{ Seconds int64 } `json:"scan_started"`
	}
	if err := json.Unmarshal(a, &s); err != nil {
		t.Fatal(err)
	}
	if s.Image != "team/web:1.4.2" || s.Registry != "registry.example.com" || s.Digest == "" || s.ScanStarted.Seconds == 0 {
		t.Errorf("unexpected scan %+v", s)
	}
	n := 0
	for _, r := range s.Resources {
		for _, v := range r.Vulnerabilities {
			n++
			if v.Name == "" || v.AquaSeverity == "" || v.NVDURL == "" && v.VendorURL == "" || r.Resource.Name == "" {
				t.Errorf("incomplete %+v", v)
			}
		}
	}
	if n != 10 || s.Summary["total"] != float64(10) {
		t.Errorf("%d vulnerabilities, summary %v", n, s.Summary)
	}
	var hub struct{ Image, Registry string }
	if err := json.Unmarshal(AquaScan("alpine:3.18", 1), &hub); err != nil || hub.Registry != "Docker Hub" || hub.Image != "alpine:3.18" {
		t.Errorf("Docker Hub image: %+v %v", hub, err)
	}
}

func TestAquaIncidentAndInsight(t *testing.T) {
	for _, raw := range [][]byte{AquaIncident("x"), AquaInsight("INS-1")} {
		if _, err := event.Parse(raw); err != nil {
			t.Error(err)
		}
	}
	var inc struct{ Name, Data string }
	if err := json.Unmarshal(AquaIncident("Drift"), &inc); err != nil || inc.Name != "Drift" || !json.Valid([]byte(inc.Data)) {
		t.Errorf("incident %+v %v", inc, err)
	}
	var ins struct{ Insight struct{ ID string } }
	if err := json.Unmarshal(AquaInsight("INS-7"), &ins); err != nil || ins.Insight.ID != "INS-7" {
		t.Errorf("insight %+v %v", ins, err)
	}
}

package testevents

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/postee-dev/postee/core/event"
)

func TestTrivy(t *testing.T) {
	a := Trivy(7, 20)
	if !bytes.Equal(a, Trivy(7, 20)) {
		t.Fatal("Trivy is not deterministic")
	}
	if n := len(a); n < 4000 || n > 7000 {
		t.Errorf("Trivy(7, 20) is %d bytes, want about 5 KB", n)
	}
	var s Scan
	if err := json.Unmarshal(a, &s); err != nil {
		t.Fatal(err)
	}
	if s.ID != "7" || s.Image == "" || s.Digest == "" || s.Registry == "" || s.OS == "" {
		t.Errorf("missing fields: %+v", s)
	}
	total, n := 0, 0
	for _, r := range s.Resources {
		n += len(r.Vulnerabilities)
		for _, v := range r.Vulnerabilities {
			if v.Name == "" || r.Resource.Name == "" || v.Severity == "" || v.NVDURL == "" || v.Description == "" {
				t.Errorf("incomplete vulnerability %+v", v)
			}
		}
	}
	sum := s.VulnerabilitySummary
	total = sum.Critical + sum.High + sum.Medium + sum.Low + sum.Negligible
	if n != 20 || total != 20 || sum.Total != 20 || sum.Critical == 0 {
		t.Errorf("got %d vulnerabilities, summary %+v", n, sum)
	}
	if bytes.Equal(Trivy(8, 20), a) {
		t.Error("different ids give the same event")
	}
	if _, err := event.Parse(Trivy(0, 0)); err != nil {
		t.Errorf("Trivy(0, 0): %v", err)
	}
}

func TestTracee(t *testing.T) {
	a := Tracee("TRC-1", "node-1")
	if !bytes.Equal(a, Tracee("TRC-1", "node-1")) {
		t.Fatal("Tracee is not deterministic")
	}
	var f Finding
	if err := json.Unmarshal(a, &f); err != nil {
		t.Fatal(err)
	}
	if f.SigMetadata.ID != "TRC-1" || f.SigMetadata.Name == "" || f.Context.HostName != "node-1" ||
		f.SigMetadata.Properties["MITRE ATT&CK"] == nil || f.SigMetadata.Properties["Severity"] == nil {
		t.Errorf("unexpected finding %+v", f)
	}
	var g Finding
	if err := json.Unmarshal(Tracee("TRC-99", "h"), &g); err != nil || g.SigMetadata.Name == "" {
		t.Errorf("unknown signature: %v %+v", err, g.SigMetadata)
	}
}

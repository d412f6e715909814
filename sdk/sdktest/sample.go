package sdktest

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/postee-dev/postee/sdk"
)

// CheckSample checks a plugin's sample config (the YAML list of action
// entries shipped beside it as sample.yaml): every entry is of p's type
// and configures without diagnostics. It returns the entries, so that a
// test can point them at a local server and run them.
//
//	//go:embed sample.yaml
//	var sample string
//	func TestSample(t *testing.T) { sdktest.CheckSample(t, plugin, sample) }
func CheckSample(t testing.TB, p sdk.Plugin, sampleYAML string) []map[string]any {
	t.Helper()
	var entries []map[string]any
	if err := yaml.Unmarshal([]byte(sampleYAML), &entries); err != nil {
		t.Fatalf("sample config: %v", err)
	}
	if len(entries) == 0 {
		t.Fatalf("sample config has no action entry")
	}
	h := New(t, p)
	for i, e := range entries {
		typ, _ := e["type"].(string)
		if !strings.EqualFold(typ, p.Type) {
			t.Errorf("sample config entry %d: type %q, want %q", i+1, typ, p.Type)
			continue
		}
		name, _ := e["name"].(string)
		if name == "" {
			t.Errorf("sample config entry %d has no name", i+1)
			continue
		}
		if diags := h.Configure(name, e); len(diags) > 0 {
			t.Errorf("sample config entry %q does not configure: %v", name, diags)
		}
	}
	return entries
}

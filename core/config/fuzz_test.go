package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse: any input gives a config or errors that name the file; never
// a panic. The seed corpus is the example configs and the error cases.
func FuzzParse(f *testing.F) {
	for _, path := range []string{"testdata/seed-controller-runner.yaml", "testdata/reference-full.yaml", "../../examples/cfg.yaml"} {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{"", "- a\n", "routes: [", "routes:\n- name: r\n  input: |\n    x\n", "actions:\n- {name: a, type: x, enable: yes}\n",
		"name: &a x\nrules: *a\n", "routes:\n- name: r\n  plugins:\n    aggregate-message-timeout: 1d\n", "templates:\n- name: t\n  body: !!binary aGVsbG8=\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %q", err)
			}
			return
		}
		if cfg == nil {
			t.Fatal("nil config without an error")
		}
	})
}

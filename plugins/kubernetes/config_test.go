package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigErrors(t *testing.T) {
	srv := newAPIServer(t)
	path := kubeconfig(t, srv)
	cases := []struct {
		name  string
		extra map[string]any
		want  []string // "key: message part", one per diagnostic
	}{
		{"no selector", map[string]any{"kube-label-selector": nil},
			[]string{"kube-label-selector: is required"}},
		{"empty selector", map[string]any{"kube-label-selector": ""},
			[]string{"kube-label-selector: is required"}},
		{"blank selector", map[string]any{"kube-label-selector": "   "},
			[]string{"kube-label-selector: is required"}},
		{"unparsable selector", map[string]any{"kube-label-selector": "app in (web"},
			[]string{`kube-label-selector: "app in (web" is not a valid label selector`}},
		{"selector with bracket path", map[string]any{"kube-label-selector": "app=event.input.items[0].name"},
			[]string{"kube-label-selector: \"app=event.input.items[0].name\" is not a valid label selector"}},
		{"no namespace", map[string]any{"kube-namespace": nil},
			[]string{"kube-namespace: is required"}},
		{"bad namespace", map[string]any{"kube-namespace": "Prod_1"},
			[]string{`kube-namespace: "Prod_1" is not a valid namespace`}},
		{"no kube-actions", map[string]any{"kube-actions": nil},
			[]string{"kube-actions: is required"}},
		{"empty kube-actions", map[string]any{"kube-actions": map[string]any{"labels": map[string]any{}}},
			[]string{"kube-actions: is required"}},
		{"unknown kube-actions key", map[string]any{"kube-actions": map[string]any{"taints": map[string]any{"a": "b"}}},
			[]string{`kube-actions: unknown key "taints"`}},
		{"labels not a mapping", map[string]any{"kube-actions": map[string]any{"labels": []any{"a"}}},
			[]string{"kube-actions: labels must be a mapping"}},
		{"null value", map[string]any{"kube-actions": map[string]any{"labels": map[string]any{"a": nil}}},
			[]string{`kube-actions: labels: "a" has no value`}},
		{"bad label key", map[string]any{"kube-actions": map[string]any{"labels": map[string]any{"bad key": "x"}}},
			[]string{`kube-actions: labels: "bad key" is not a valid label key`}},
		{"bad literal label value", map[string]any{"kube-actions": map[string]any{"labels": map[string]any{"image": "alpine:3.10"}}},
			[]string{`kube-actions: labels: image: "alpine:3.10" is not a valid label value`}},
		{"bad annotation key", map[string]any{"kube-actions": map[string]any{"annotations": map[string]any{"a/b/c": "x"}}},
			[]string{`kube-actions: annotations: "a/b/c" is not a valid annotation key`}},
		{"missing kubeconfig", map[string]any{"kube-config-file": filepath.Join(t.TempDir(), "nope")},
			[]string{"kube-config-file: cannot load the kubeconfig"}},
		{"not in a cluster", map[string]any{"kube-config-file": ""},
			[]string{"kube-config-file: is empty, so the in-cluster service account is used"}},
		{"zero timeout", map[string]any{"timeout": "0s"},
			[]string{"timeout"}},
		{"unknown key", map[string]any{"kube-selector": "app=web"},
			[]string{`kube-selector: unknown key "kube-selector"`}},
		{"every problem at once", map[string]any{"kube-namespace": "", "kube-label-selector": "", "kube-actions": nil, "kube-config-file": ""},
			[]string{"kube-namespace: is required", "kube-label-selector: is required", "kube-actions: is required", "kube-config-file: is empty"}},
	}
	// Not inside a cluster, whatever the machine running the tests is.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			diags := h.Configure("a", settingsFor(path, tc.extra))
			if len(diags) != len(tc.want) {
				t.Fatalf("diagnostics %v, want %d: %v", diags, len(tc.want), tc.want)
			}
			for _, w := range tc.want {
				found := false
				for _, d := range diags {
					if strings.HasPrefix(d.String(), w) || (!strings.Contains(w, ":") && d.Key == w) {
						found = true
					}
				}
				if !found {
					t.Errorf("diagnostics %v lack %q", diags, w)
				}
			}
		})
	}
}

func TestConfigAccepted(t *testing.T) {
	srv := newAPIServer(t)
	path := kubeconfig(t, srv)
	for name, extra := range map[string]map[string]any{
		"set-based selector":    {"kube-label-selector": "app in (web, api),!canary,tier notin (db)"},
		"exists selector":       {"kube-label-selector": "app"},
		"only annotations":      {"kube-actions": map[string]any{"annotations": map[string]any{"postee.dev/x": "event.input.image"}}},
		"placeholder in labels": {"kube-actions": map[string]any{"labels": map[string]any{"sig": "event.input.SigMetadata.ID"}}},
		"timeout":               {"timeout": "1m"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			if diags := h.Configure("a", settingsFor(path, extra)); len(diags) > 0 {
				t.Errorf("diagnostics %v", diags)
			}
		})
	}
	_ = os.Remove
}

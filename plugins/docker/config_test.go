package main

import (
	"strings"
	"testing"
)

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name     string
		settings map[string]any
		want     []string
	}{
		{"no image", map[string]any{}, []string{"docker-image-name: is required"}},
		{"bad image", map[string]any{"docker-image-name": "Alpine:Latest"}, []string{`docker-image-name: "Alpine:Latest" is not a valid image reference`}},
		{"env without =", map[string]any{"docker-image-name": "alpine", "docker-env": []any{"API_TOKEN"}}, []string{"docker-env: entry 1 is not NAME=value"}},
		{"env reserved", map[string]any{"docker-image-name": "alpine", "docker-env": []any{"POSTEE_EVENT=x"}}, []string{"docker-env: POSTEE_EVENT is set by postee"}},
		{"env not a list", map[string]any{"docker-image-name": "alpine", "docker-env": "A=B"}, []string{"docker-env: must be a list"}},
		{"relative host path", map[string]any{"docker-image-name": "alpine", "docker-volume-mounts": map[string]any{"data": "/data"}}, []string{`docker-volume-mounts: host path "data" must be absolute`}},
		{"relative container path", map[string]any{"docker-image-name": "alpine", "docker-volume-mounts": map[string]any{"/data": "data"}}, []string{`docker-volume-mounts: /data: container path "data" must be absolute`}},
		{"mount on /", map[string]any{"docker-image-name": "alpine", "docker-volume-mounts": map[string]any{"/data": "/"}}, []string{"docker-volume-mounts: /data: cannot be mounted on the container's /"}},
		{"two mounts on one path", map[string]any{"docker-image-name": "alpine", "docker-volume-mounts": map[string]any{"/a": "/data", "/b": "/data/"}}, []string{"docker-volume-mounts: /a and /b are both mounted on /data"}},
		{"bad pull", map[string]any{"docker-image-name": "alpine", "docker-pull": "sometimes"}, []string{`docker-pull: "sometimes" is not one of missing, always, never`}},
		{"zero timeout", map[string]any{"docker-image-name": "alpine", "timeout": "0"}, []string{"timeout"}},
		{"unknown key", map[string]any{"docker-image-name": "alpine", "docker-entrypoint": "sh"}, []string{`docker-entrypoint: unknown key`}},
		{"every problem at once", map[string]any{"docker-env": []any{"X"}, "docker-pull": "no"}, []string{"docker-image-name: is required", "docker-env: entry 1", "docker-pull:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			diags := h.Configure("a", tc.settings)
			if len(diags) != len(tc.want) {
				t.Fatalf("diagnostics %v, want %v", diags, tc.want)
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
			// A docker-env entry may be a secret: it is never echoed.
			for _, d := range diags {
				if strings.Contains(d.Message, "API_TOKEN") {
					t.Errorf("diagnostic echoes the env entry: %v", d)
				}
			}
		})
	}
}

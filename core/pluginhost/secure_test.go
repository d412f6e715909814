package pluginhost

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/sdk/protocol"
)

// copyPlugin copies the test plugin into a fresh directory (mode 0700) and
// returns the directory and the copy's path.
func copyPlugin(t *testing.T) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	b, err := os.ReadFile(filepath.Join(pluginDir, BinaryPrefix+"test"))
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, BinaryPrefix+"test")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func hostIn(t *testing.T, dir string, sums map[string][]byte) *Host {
	t.Helper()
	h := New(Options{Dir: dir, StartTimeout: 20 * time.Second, Checksums: sums})
	t.Cleanup(h.Close)
	return h
}

// environ asks the plugin for its /proc/self/environ.
func environ(t *testing.T, h *Host, action string) map[string]string {
	t.Helper()
	out, err := h.Execute(ctx(t), req(action, `{"do":"environ"}`, ""))
	if err != nil || out.Err != "" {
		t.Fatalf("environ: %+v %v", out, err)
	}
	env := map[string]string{}
	for _, kv := range strings.Split(out.Output, "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestPluginEnvironmentIsMinimal(t *testing.T) {
	for k, v := range map[string]string{
		"POSTEE_API_KEY":    "management-key",
		"AQUAALERT_KEY_PEM": "/etc/postee/tls.key",
		"PATH_TO_DB":        "/server/database/webhooks.db",
		"UNRELATED_SECRET":  "do-not-pass",
		"SLACK_TOKEN":       "xoxb-referenced",
		"JIRA_PASSWORD":     "jira-only",
		"LC_TIME":           "C",
		"HTTPS_PROXY":       "http://proxy:3128",
		"TZ":                "UTC",
	} {
		t.Setenv(k, v)
	}
	h := newHost(t, nil)
	// An action naming postee's own variable does not get it either.
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`), Env: []string{"SLACK_TOKEN", "POSTEE_API_KEY"}}}); err != nil {
		t.Fatal(err)
	}
	env := environ(t, h, "a")
	for _, k := range []string{"SLACK_TOKEN", "LC_TIME", "HTTPS_PROXY", "TZ", "PATH"} {
		if env[k] != os.Getenv(k) {
			t.Errorf("%s = %q, want %q", k, env[k], os.Getenv(k))
		}
	}
	for _, k := range []string{"POSTEE_API_KEY", "AQUAALERT_KEY_PEM", "PATH_TO_DB", "UNRELATED_SECRET", "JIRA_PASSWORD"} {
		if v, ok := env[k]; ok {
			t.Errorf("the plugin got %s=%q", k, v)
		}
	}
	for k, v := range env {
		if strings.HasPrefix(k, "POSTEE_") && k != "POSTEE_ACTION_PLUGIN" && k != protocol.EnvTLSFD && k != protocol.EnvExecutionsFD || strings.HasPrefix(k, "AQUAALERT_") {
			t.Errorf("the plugin got %s=%q", k, v)
		}
	}
}

func TestPluginEnvironmentFollowsTheConfig(t *testing.T) {
	t.Setenv("FIRST_VAR", "one")
	t.Setenv("SECOND_VAR", "two")
	h := newHost(t, nil)
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`), Env: []string{"FIRST_VAR"}}}); err != nil {
		t.Fatal(err)
	}
	if env := environ(t, h, "a"); env["FIRST_VAR"] != "one" || env["SECOND_VAR"] != "" {
		t.Fatalf("first config: %v", env)
	}
	// A reload that names another variable restarts the process with it.
	if err := h.Configure(ctx(t), []Spec{
		{Name: "a", Type: "test", Settings: []byte(`{}`)},
		{Name: "b", Type: "test", Settings: []byte(`{}`), Env: []string{"SECOND_VAR"}},
	}); err != nil {
		t.Fatal(err)
	}
	if env := environ(t, h, "a"); env["FIRST_VAR"] != "" || env["SECOND_VAR"] != "two" {
		t.Fatalf("second config: %v", env)
	}
}

func TestTypeEnvironment(t *testing.T) {
	tests := []struct {
		typ, name string
		want      bool
	}{
		{"jira", "JIRA_PASSWORD", true},
		{"http", "JIRA_PASSWORD", false},
		{"awssecurityhub", "AWS_SECRET_ACCESS_KEY", true},
		{"http", "AWS_SECRET_ACCESS_KEY", false},
		{"kubernetes", "KUBERNETES_SERVICE_HOST", true},
		{"docker", "DOCKER_HOST", true},
		{"exec", "LC_ALL", true},
		{"exec", "SSL_CERT_FILE", true},
		{"exec", "no_proxy", true},
		{"exec", "POSTEE_CFG", false},
		{"exec", "PLUGIN_CLIENT_CERT", false},
	}
	for _, tt := range tests {
		if got := allowed(tt.typ, nil, tt.name); got != tt.want {
			t.Errorf("allowed(%s, %s) = %v", tt.typ, tt.name, got)
		}
	}
}

func TestUnsafePluginFilesAreRefused(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir, path string) string // returns the path the error names
	}{
		{"world-writable file", func(t *testing.T, dir, path string) string {
			chmod(t, path, 0o777)
			return path
		}},
		{"group-writable file", func(t *testing.T, dir, path string) string {
			chmod(t, path, 0o775)
			return path
		}},
		{"world-writable directory", func(t *testing.T, dir, path string) string {
			chmod(t, dir, 0o777)
			return dir
		}},
		{"symlink to a file in a writable directory", func(t *testing.T, dir, path string) string {
			other := t.TempDir()
			chmod(t, other, 0o777)
			target := filepath.Join(other, "real-plugin")
			if err := os.Rename(path, target); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			return other
		}},
		{"file owned by another user", func(t *testing.T, dir, path string) string {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the file away")
			}
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return path
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, path := copyPlugin(t)
			named := tt.prepare(t, dir, path)
			h := hostIn(t, dir, nil)
			err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}})
			var pe *PermissionError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a PermissionError", err)
			}
			if !strings.Contains(err.Error(), named+" is ") || !strings.Contains(err.Error(), `action "a"`) {
				t.Errorf("err = %v, want it to name %s and the action", err, named)
			}
			if len(h.Running()) != 0 {
				t.Error("a refused plugin runs")
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestChecksums(t *testing.T) {
	dir, path := copyPlugin(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	good := sha256.Sum256(b)
	bad := sha256.Sum256([]byte("another build"))
	spec := func(sum []byte) []Spec {
		return []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`), SHA256: sum}}
	}
	tests := []struct {
		name    string
		flag    []byte
		config  []byte
		wantErr string
	}{
		{"config pin matches", nil, good[:], ""},
		{"flag pin matches", good[:], nil, ""},
		{"both match", good[:], good[:], ""},
		{"config pin differs from the file", nil, bad[:], "does not match its pinned sha256"},
		{"flag pin differs from the file", bad[:], nil, "does not match its pinned sha256"},
		{"flag and config disagree", good[:], bad[:], "plugin-checksums in the config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sums map[string][]byte
			if tt.flag != nil {
				sums = map[string][]byte{"test": tt.flag}
			}
			h := hostIn(t, dir, sums)
			err := h.Configure(ctx(t), spec(tt.config))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(tt.wantErr, "pinned") && !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v, want the file named", err)
			}
		})
	}
}

func TestParseChecksumFlag(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	if typ, b, err := ParseChecksumFlag("HTTP=sha256:" + sum); err != nil || typ != "http" || len(b) != 32 {
		t.Errorf("got %q %x %v", typ, b, err)
	}
	for _, bad := range []string{"http", "=" + sum, "http=abc", "http=" + strings.Repeat("zz", 32)} {
		if _, _, err := ParseChecksumFlag(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

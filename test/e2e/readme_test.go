package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shellBlock returns the lines of the first ```sh block after heading in
// the Markdown file at path, comments and blank lines dropped.
func shellBlock(t *testing.T, path, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, heading)
	if i < 0 {
		t.Fatalf("%s: no %q", path, heading)
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	if start < 0 {
		t.Fatalf("%s: no sh block after %q", path, heading)
	}
	s = s[start+len("```sh\n"):]
	s = s[:strings.Index(s, "```")]
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func sh(t *testing.T, dir, line string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}

// The README's "Try it" works as written against postee running on
// examples/cfg.yaml (as `make run` starts it): the stdout action prints the
// event, and the exec action's output is in postee's log.
func TestReadmeTryIt(t *testing.T) {
	build(t)
	cfg, err := os.ReadFile(filepath.Join(repoRoot, "examples", "cfg.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, string(cfg), opts{})
	host := strings.TrimPrefix(p.URL, "http://")
	for _, line := range shellBlock(t, filepath.Join(repoRoot, "README.md"), "## Try it") {
		out := sh(t, repoRoot, strings.ReplaceAll(line, "localhost:8082", host))
		if strings.Contains(line, "/ping") && !strings.Contains(out, "Postee alive!") {
			t.Errorf("%s: %q", line, out)
		}
	}
	p.Stdout.waitFor(t, "the stdout action", 30*time.Second, func(s string) bool { return strings.Contains(s, `"image": "alpine:3.18"`) })
	p.Stderr.waitFor(t, "the exec action's output in the log", 30*time.Second, func(s string) bool {
		for _, l := range strings.Split(s, "\n") {
			if strings.Contains(l, "script ran:") && strings.Contains(l, "action=say-critical") &&
				strings.Contains(l, `output="critical vulnerabilities found in event `) {
				return true
			}
		}
		return false
	})
}

// The README's `postee validate` commands work as written (with the binaries
// of this test run in bin/).
func TestReadmeValidate(t *testing.T) {
	build(t)
	var n int
	for _, line := range shellBlock(t, filepath.Join(repoRoot, "README.md"), "## Running") {
		if !strings.HasPrefix(line, "bin/postee validate") {
			continue
		}
		n++
		line = strings.ReplaceAll(line, "bin/", binDir+"/")
		out := sh(t, repoRoot, line)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !strings.HasPrefix(lines[len(lines)-1], "examples/cfg.yaml: valid (") {
			t.Errorf("%s:\n%s", line, out)
		}
	}
	if n == 0 {
		t.Fatal("no validate command in the README")
	}
}

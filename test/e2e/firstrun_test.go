package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Each kind of config the existing Postee accepted, written for this test,
// loads: `postee validate` prints a warning naming file:line and passes,
// with its verdict last; `validate --strict` refuses the same config.
func TestValidateLenientAndStrict(t *testing.T) {
	build(t)
	dir := t.TempDir()
	tests := []struct {
		name, cfg string
		warning   string // the warning, without the file name
	}{
		{"older route key", "routes:\n- name: r\n  action: []\n  actions: [print]\n  template: raw\n" + rawAndPrint,
			`:3: route "r": key "action" is from an older Postee version and is ignored; the current key is "actions"`},
		{"older plugin keys", "routes:\n- name: r\n  actions: [print]\n  template: raw\n  plugins:\n    aggregate-issues-number: null\n    policy-show-all: true\n" + rawAndPrint,
			`:6: route "r": key "aggregate-issues-number" is from an older Postee version and is ignored; the current key is "aggregate-message-number"`},
		{"unused template with empty url", "routes:\n- name: r\n  actions: [print]\n  template: raw\ntemplates:\n- name: custom-email\n  url:\n" + rawAndPrint[len("templates:\n"):],
			`:6: template "custom-email": not used by any route, so not loaded; it would fail: needs one of rego-package, rego-file, body, url, legacy-scan-renderer`},
		{"route naming an undefined action", "routes:\n- name: r\n  actions: [print, my-jira]\n  template: raw\n" + rawAndPrint,
			`:2: route "r": action "my-jira" is not defined and is skipped; the route runs the actions it has (known: print)`},
		{"route without template", "routes:\n- name: r\n  actions: [print]\n" + rawAndPrint,
			`:2: route "r": has actions but no template: its events are recorded as failed executions until a template is set (known: raw)`},
		{"exec input-file not there yet", "routes:\n- name: r\n  actions: [run]\n  template: raw\n" + rawAndPrint +
			"- name: run\n  type: exec\n  enable: true\n  input-file: " + filepath.Join(dir, "exec-test.sh") + "\n",
			`:15: action "run": input-file: ` + filepath.Join(dir, "exec-test.sh") + ` does not exist on this machine yet; it is read when the action runs, and a run fails while it is missing`},
		{"http body-file not there yet", "routes:\n- name: r\n  actions: [post]\n  template: raw\n" + rawAndPrint +
			"- name: post\n  type: http\n  enable: true\n  url: https://example.com/hook\n  method: POST\n  body-file: " + filepath.Join(dir, "some.log") + "\n",
			`:17: action "post": body-file: ` + filepath.Join(dir, "some.log") + ` does not exist on this machine yet; it is read when the action runs, and a run fails while it is missing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.cfg)
			args := []string{"validate", "--cfgfile", path, "--plugin-dir", filepath.Join(binDir, "plugins")}
			out, err := runPostee(t, nil, args...)
			if err != nil {
				t.Fatalf("validate must pass: %v\n%s", err, out)
			}
			if !strings.Contains(out, path+tt.warning) {
				t.Errorf("output lacks the warning %q:\n%s", path+tt.warning, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if last := lines[len(lines)-1]; !regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `: valid with \d+ warnings? \(above\) \(`).MatchString(last) {
				t.Errorf("the verdict is not the last line: %q\n%s", last, out)
			}
			out, err = runPostee(t, nil, append(args, "--strict")...)
			if err == nil || !strings.Contains(out, "refused by --strict") || !strings.Contains(out, path+tt.warning) {
				t.Errorf("validate --strict must fail naming the warning: %v\n%s", err, out)
			}
		})
	}
}

const rawAndPrint = `templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: print
  type: stdout
  enable: true
`

// What stays fatal: a used action whose type has no plugin names the file
// looked for; wrong types of known keys.
func TestValidateStillFatal(t *testing.T) {
	build(t)
	for _, tt := range []struct{ name, cfg, want string }{
		{"no plugin", "routes:\n- name: r\n  actions: [p]\n  template: raw\n" + rawAndPrint + "- name: p\n  type: carrier-pigeon\n  enable: true\n",
			`action "p": no plugin for type "carrier-pigeon": looked for an executable postee-action-carrier-pigeon in ` + "PLUGINS"},
		{"wrong type", "routes:\n- name: r\n  serialize-actions: sometimes\n", `:3: route "r": serialize-actions must be true or false, not "sometimes"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.cfg)
			out, err := runPostee(t, nil, "validate", "--cfgfile", path, "--plugin-dir", filepath.Join(binDir, "plugins"))
			want := strings.ReplaceAll(tt.want, "PLUGINS", filepath.Join(binDir, "plugins"))
			if err == nil || !strings.Contains(out, want) {
				t.Errorf("err %v, output lacks %q:\n%s", err, want, out)
			}
		})
	}
}

// A user's template directory (./rego-templates by default; here
// --rego-templates) provides a package a route's template names.
func TestUserTemplateDirectory(t *testing.T) {
	build(t)
	dir := filepath.Join(t.TempDir(), "rego-templates", "example", "defectdojo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dd.rego"), []byte("package plejd.trivyoperator.defectdojo\ntitle = \"dd\"\nresult = sprintf(\"kind %s\", [input.kind])\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := "routes:\n- name: r\n  actions: [print]\n  template: dd\ntemplates:\n- name: dd\n  rego-package: plejd.trivyoperator.defectdojo\nactions:\n- name: print\n  type: stdout\n  enable: true\n"
	p := start(t, cfg, opts{args: []string{"--rego-templates", filepath.Dir(filepath.Dir(dir))}})
	p.mustPost("/", `{"kind":"ClusterRbacAssessmentReport"}`)
	p.Stdout.waitFor(t, "the user template's output", 30*time.Second, func(s string) bool { return strings.Contains(s, "kind ClusterRbacAssessmentReport") })
}

// A route with actions and no template: each matching event is a failed
// execution with the reason, in /executions and in the log.
func TestRouteWithoutTemplateRecordsFailure(t *testing.T) {
	p := start(t, "routes:\n- name: r\n  actions: [print]\n"+rawAndPrint, opts{env: []string{"POSTEE_API_KEY=" + apiKey}})
	p.Stderr.waitFor(t, "the load warning", 10*time.Second, func(s string) bool {
		return strings.Contains(s, `route "r": has actions but no template`)
	})
	p.mustPost("/", `{"image":"alpine"}`)
	xs := p.waitExecutions(t, 1)
	if xs[0].Status != "failed" || !strings.Contains(xs[0].Error, "the route has no template") || xs[0].Action != "print" {
		t.Errorf("execution = %+v", xs[0])
	}
	p.Stderr.waitFor(t, "the failure in the log", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "action failed") && strings.Contains(s, "the route has no template")
	})
}

// Two postee processes on one store: the second says so quickly, naming the
// file, the first one's pid and the fix. A bad config is reported as such
// even while the store is held.
func TestSecondPosteeOnOneStore(t *testing.T) {
	db := filepath.Join(t.TempDir(), "webhooks.db")
	first := start(t, "routes: []\n", opts{env: []string{"PATH_TO_DB=" + db}})

	startAt := time.Now()
	out, err := runPostee(t, []string{"PATH_TO_DB=" + db}, "--cfgfile", writeConfig(t, "routes: []\n"), "--url", "127.0.0.1:0", "--tls", "",
		"--plugin-dir", filepath.Join(binDir, "plugins"))
	want := "store " + db + " is in use by another postee (pid " + itoa(first.cmd.Process.Pid) + "); give each postee its own PATH_TO_DB"
	if err == nil || !strings.Contains(out, want) {
		t.Fatalf("second postee: %v, output lacks %q:\n%s", err, want, out)
	}
	if took := time.Since(startAt); took > 10*time.Second {
		t.Errorf("took %v to say so", took)
	}

	out, err = runPostee(t, []string{"PATH_TO_DB=" + db}, "--cfgfile", writeConfig(t, "routes:\n- name: r\n  serialize-actions: maybe\n"),
		"--url", "127.0.0.1:0", "--tls", "", "--plugin-dir", filepath.Join(binDir, "plugins"))
	if err == nil || !strings.Contains(out, `route "r": serialize-actions must be true or false`) || strings.Contains(out, "in use") {
		t.Errorf("a bad config while the store is held: %v\n%s", err, out)
	}

	// An action setting its plugin refuses is reported too, not the store.
	out, err = runPostee(t, []string{"PATH_TO_DB=" + db}, "--cfgfile", writeConfig(t,
		"routes:\n- name: r\n  actions: [hook]\n  template: raw\ntemplates:\n- name: raw\n  rego-package: postee.rawmessage.json\n"+
			"actions:\n- name: hook\n  type: http\n  enable: true\n  url: not a url\n  method: POST\n"),
		"--url", "127.0.0.1:0", "--tls", "", "--plugin-dir", filepath.Join(binDir, "plugins"))
	if err == nil || !strings.Contains(out, `action "hook": url:`) || strings.Contains(out, "in use") {
		t.Errorf("a bad action setting while the store is held: %v\n%s", err, out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A controller and a runner started on one host with default settings (no
// PATH_TO_DB) both run: the runner's store is its own. As a user who cannot
// write the default /server/database, postee uses a per-user directory and
// says where.
func TestControllerAndRunnerOnOneHostWithDefaults(t *testing.T) {
	build(t)
	home, cfgDir := t.TempDir(), t.TempDir()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// Run as nobody, who cannot write /server/database, so that the
		// test leaves nothing there.
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		// t.TempDir's parent is private to root: open it up for the test.
		for _, d := range []string{filepath.Dir(home), filepath.Dir(cfgDir), cfgDir, binDir, filepath.Join(binDir, "plugins")} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(home, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(cfgDir, "cfg.yaml")
	if err := os.WriteFile(cfgPath, []byte("routes:\n- name: r\n  actions: [on-runner]\n  template: raw\ntemplates:\n- name: raw\n  rego-package: postee.rawmessage.json\nactions:\n- name: on-runner\n  type: stdout\n  enable: true\n  runs-on: postee-runner-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "XDG_STATE_HOME=" + filepath.Join(home, "state")}
	run := func(args ...string) *lockedBuffer {
		out := newLockedBuffer()
		cmd := exec.Command(filepath.Join(binDir, "postee"), append(args, "--url", "127.0.0.1:0", "--tls", "", "--plugin-dir", filepath.Join(binDir, "plugins"))...)
		cmd.Env = append(cleanEnv(), env...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Dir = home
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		if err := cmd.Start(); err != nil {
			t.Skipf("cannot start postee as another user: %v", err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		return out
	}
	ctl := run("--cfgfile", cfgPath, "--controller-mode", "--controller-url", "127.0.0.1:0")
	s := ctl.waitFor(t, "the controller's NATS address", 60*time.Second, func(s string) bool {
		return strings.Contains(s, "controller listening for runners") && strings.Contains(s, "webhook listening")
	})
	addr := regexp.MustCompile(`controller listening for runners: addr=(\S+)`).FindStringSubmatch(s)
	if addr == nil {
		t.Fatalf("no address:\n%s", s)
	}
	state := filepath.Join(home, "state", "postee")
	if cred != nil && !strings.Contains(s, "using="+state) {
		t.Errorf("the controller does not say where its state is:\n%s", s)
	}
	runner := run("--runner-name", "postee-runner-1", "--controller-url", "nats://"+addr[1])
	runner.waitFor(t, "the runner to listen", 60*time.Second, func(s string) bool { return strings.Contains(s, "webhook listening") })
	for _, f := range []string{"webhooks.db", "webhooks-postee-runner-1.db"} {
		if _, err := os.Stat(filepath.Join(state, f)); cred != nil && err != nil {
			t.Errorf("state file: %v", err)
		}
	}
	if strings.Contains(runner.String(), "timeout") || strings.Contains(runner.String(), "in use") {
		t.Errorf("runner:\n%s", runner)
	}
}

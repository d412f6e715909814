package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkoutput"
)

const (
	// shell runs every script, as in the original postee.
	shell = "/bin/sh"
	// defaultTimeout bounds a run when `timeout` is not set.
	defaultTimeout = 60 * time.Second
	// waitDelay is how long Wait keeps reading output after the script has
	// exited (or been killed) while a background process still holds the
	// output pipe open.
	waitDelay = time.Second
	// maxArgLen is Linux's MAX_ARG_STRLEN: the most bytes one argument or one
	// NAME=value environment string can hold (the terminating NUL included).
	maxArgLen = 128 << 10
	// defaultPath is given to scripts when the plugin has no PATH itself.
	defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// scriptName is $0 of an inline script.
	scriptName = "postee-exec"
	// maxLastLine bounds the line of output quoted in an error.
	maxLastLine = 256
)

// minimalEnv are the variables of the plugin's own environment a script gets
// when inherit-env is false (each only when set).
var minimalEnv = []string{"PATH", "HOME", "LANG", "TZ"}

// pluginEnv are variables go-plugin sets for the plugin process itself; they
// mean nothing to a script and are dropped even with inherit-env.
var pluginEnv = map[string]bool{
	"POSTEE_ACTION_PLUGIN":      true, // the handshake cookie
	"PLUGIN_MIN_PORT":           true,
	"PLUGIN_MAX_PORT":           true,
	"PLUGIN_PROTOCOL_VERSIONS":  true,
	"PLUGIN_CLIENT_CERT":        true,
	"PLUGIN_UNIX_SOCKET_DIR":    true,
	"PLUGIN_UNIX_SOCKET_GROUP":  true,
	"PLUGIN_MULTIPLEX_GRPC":     true,
	"PLUGIN_TEST_SKIP_HOST_ENV": true,
}

// reservedEnv are set by the action for every run and win over `env`.
var reservedEnv = map[string]bool{
	"POSTEE_EVENT":        true,
	"POSTEE_EVENT_ID":     true,
	"POSTEE_ROUTE":        true,
	"POSTEE_ACTION":       true,
	"POSTEE_EXECUTION_ID": true,
	"POSTEE_ATTEMPT":      true,
}

// settings are the keys of an exec action's entry.
type settings struct {
	ExecScript string                `json:"exec-script"`
	InputFile  string                `json:"input-file"`
	Env        []string              `json:"env"`
	Timeout    *sdk.PositiveDuration `json:"timeout"`
	InheritEnv bool                  `json:"inherit-env"`
}

// execAction runs one configured script. It is immutable after Configure,
// so executions may run concurrently.
type execAction struct {
	// args follow shell on the command line: "-c -- <script> postee-exec" for
	// an inline script, the absolute path for input-file.
	args []string
	// file is the input-file (absolute), checked before each run.
	file string
	// env is the base environment plus `env`, without the per-run POSTEE_*.
	env     []string
	timeout time.Duration
}

var (
	_ sdk.Action      = (*execAction)(nil)
	_ sdk.EventReader = (*execAction)(nil)
)

func newAction() sdk.Action { return &execAction{} }

// ReadsEvent is false: the script gets the rendered message and the event
// id, never the event (sdk.EventReader), so postee leaves it out.
func (a *execAction) ReadsEvent() bool { return false }

// Configure validates the settings. The only I/O is a stat and open of
// input-file.
func (a *execAction) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	var errs []error
	script := strings.TrimSpace(s.ExecScript) != ""
	file := strings.TrimSpace(s.InputFile) != ""
	switch {
	case script && file:
		errs = append(errs, sdk.SettingsErrorf("input-file", "cannot be used together with exec-script; set only one"))
	case !script && !file:
		errs = append(errs, sdk.SettingsErrorf("exec-script", "exec-script or input-file is required"))
	case script:
		if err := checkScript(s.ExecScript); err != nil {
			errs = append(errs, err)
		}
		a.args = []string{"-c", "--", s.ExecScript, scriptName}
	case file:
		path, err := checkFile(s.InputFile)
		if errors.Is(err, fs.ErrNotExist) {
			// It may be put there later (a volume, a config map): read
			// when the action runs; missing then, that run fails.
			sdk.Logger().Warn(fmt.Sprintf("%s does not exist on this machine yet; it is read when the action runs, and a run fails while it is missing", path),
				"action", cfg.Name, "key", "input-file")
			err = nil
		}
		if err != nil {
			errs = append(errs, err)
		}
		a.file = path
		a.args = []string{path}
	}

	env := baseEnv(s.InheritEnv)
	for i, kv := range s.Env {
		key, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			errs = append(errs, sdk.SettingsErrorf("env", "entry %d (%q) must have the form NAME=value", i+1, kv))
			continue
		case key == "":
			errs = append(errs, sdk.SettingsErrorf("env", "entry %d (%q) has an empty name", i+1, kv))
			continue
		case strings.ContainsRune(kv, 0):
			errs = append(errs, sdk.SettingsErrorf("env", "entry %d (%s) contains a NUL byte", i+1, key))
			continue
		case len(kv) >= maxArgLen:
			errs = append(errs, sdk.SettingsErrorf("env", "entry %d (%s) is %d bytes; one variable must be under 128 KiB", i+1, key, len(kv)))
			continue
		case reservedEnv[key]:
			sdk.Logger().Warn("env entry is overridden by the value postee sets for every run", "action", cfg.Name, "name", key)
		}
		env = setEnv(env, kv)
	}

	a.timeout = defaultTimeout
	if s.Timeout != nil {
		a.timeout = s.Timeout.D()
	}
	a.env = env
	return errors.Join(errs...)
}

func checkScript(script string) error {
	if strings.ContainsRune(script, 0) {
		return sdk.SettingsErrorf("exec-script", "contains a NUL byte")
	}
	if len(script) >= maxArgLen {
		return sdk.SettingsErrorf("exec-script", "is %d bytes; an inline script must be under 128 KiB (put longer scripts in a file and use input-file)", len(script))
	}
	return nil
}

// checkFile returns path made absolute after checking it is a readable
// regular file.
func checkFile(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", sdk.SettingsErrorf("input-file", "%v", err)
	}
	f, err := os.Open(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return abs, err
	}
	if err != nil {
		return "", sdk.SettingsErrorf("input-file", "cannot read the script: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", sdk.SettingsErrorf("input-file", "cannot read the script: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return "", sdk.SettingsErrorf("input-file", "%s is not a regular file", abs)
	}
	return abs, nil
}

// baseEnv is the environment a script starts from: the plugin's own (less
// go-plugin's variables) with inherit, else only minimalEnv.
func baseEnv(inherit bool) []string {
	var env []string
	if inherit {
		for _, kv := range os.Environ() {
			key, _, _ := strings.Cut(kv, "=")
			if !pluginEnv[key] {
				env = append(env, kv)
			}
		}
		return env
	}
	for _, key := range minimalEnv {
		if v, ok := os.LookupEnv(key); ok {
			env = append(env, key+"="+v)
		}
	}
	if _, ok := os.LookupEnv("PATH"); !ok {
		env = append(env, "PATH="+defaultPath)
	}
	return env
}

// setEnv sets kv ("NAME=value") in env, replacing an entry of that name.
func setEnv(env []string, kv string) []string {
	key, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// Execute runs the script once. Non-zero exits and timeouts are retryable;
// a missing script file or an event that cannot be passed are permanent.
func (a *execAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	if a.file != "" {
		if _, err := os.Stat(a.file); errors.Is(err, fs.ErrNotExist) {
			return sdk.Result{}, sdk.Permanentf("input-file: the script %s does not exist on this machine (no such file)", a.file)
		} else if err != nil {
			return sdk.Result{}, sdk.Permanentf("input-file: %w", err)
		}
	}
	event := "POSTEE_EVENT=" + ex.Message.Description
	if len(event) >= maxArgLen {
		return sdk.Result{}, sdk.Permanentf("the rendered description is %d bytes, too large for the POSTEE_EVENT environment variable (one variable must be under 128 KiB)", len(ex.Message.Description))
	}
	if strings.ContainsRune(event, 0) {
		return sdk.Result{}, sdk.Permanentf("the rendered description contains a NUL byte, which an environment variable cannot hold")
	}
	env := append(make([]string, 0, len(a.env)+6), a.env...)
	env = setEnv(env, event)
	env = setEnv(env, "POSTEE_EVENT_ID="+ex.EventID)
	env = setEnv(env, "POSTEE_ROUTE="+ex.Route)
	env = setEnv(env, "POSTEE_ACTION="+ex.Action)
	env = setEnv(env, "POSTEE_EXECUTION_ID="+ex.ID)
	env = setEnv(env, "POSTEE_ATTEMPT="+strconv.Itoa(ex.Attempt))

	runCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	out := new(sdkoutput.Buffer)
	cmd := exec.CommandContext(runCtx, shell, a.args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out // one pipe, one copying goroutine
	cmd.SysProcAttr = scriptAttrs()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = waitDelay

	start := time.Now()
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			return sdk.Result{}, fmt.Errorf("not started: %w", context.Cause(ctx))
		}
		err = fmt.Errorf("start %s: %w", shell, err)
		if permanentStartError(err) {
			err = sdk.Permanent(err)
		}
		return sdk.Result{}, err
	}
	waitErr := cmd.Wait()
	elapsed := time.Since(start)
	state := cmd.ProcessState

	output, truncated, total := out.Result()
	res := sdk.Result{
		Output: output,
		Details: map[string]string{
			"duration_ms": strconv.FormatInt(elapsed.Milliseconds(), 10),
		},
	}
	if truncated {
		res.Details["output_truncated"] = "true"
		res.Details["output_bytes"] = strconv.FormatInt(total, 10)
	}
	ws, _ := state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		res.Details["signal"] = ws.Signal().String()
	} else {
		res.Details["exit_code"] = strconv.Itoa(state.ExitCode())
	}
	last := sdkoutput.LastLine(output, maxLastLine)
	// The output goes to postee's log too (bounded), beside /executions.
	sdk.Logger().Info("script ran", "action", ex.Action, "route", ex.Route, "event", ex.EventID,
		"exit_code", state.ExitCode(), "output", clipLog(output))

	switch {
	case state.Success():
		if errors.Is(waitErr, exec.ErrWaitDelay) {
			// The script exited but a background process kept the output
			// open; it still runs, its later output is not captured.
			res.Details["output_incomplete"] = "true"
		}
		return res, nil
	case ctx.Err() != nil:
		return res, fmt.Errorf("canceled after %s, process group killed: %w", round(elapsed), context.Cause(ctx))
	case runCtx.Err() != nil:
		res.Details["timed_out"] = "true"
		return res, fmt.Errorf("timed out after %s, process group killed%s", a.timeout, suffix(last))
	case ws.Signaled():
		return res, fmt.Errorf("killed by signal %s%s", ws.Signal(), suffix(last))
	default:
		return res, fmt.Errorf("exit status %d%s", state.ExitCode(), suffix(last))
	}
}

// killGroup kills the process group led by pid, so that processes the
// script started die with it.
func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// permanentStartError reports whether a failure to start the shell will
// recur on retry (as opposed to a transient fork failure).
func permanentStartError(err error) bool {
	for _, e := range []error{syscall.E2BIG, syscall.EINVAL, syscall.ENOEXEC, syscall.EACCES, fs.ErrNotExist} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func suffix(last string) string {
	if last == "" {
		return ""
	}
	return ": " + last
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// logMax bounds the script output written to postee's log.
const logMax = 2 << 10

// clipLog is output bounded for the log, without a trailing newline.
func clipLog(output string) string {
	output = strings.TrimRight(output, "\n")
	if len(output) <= logMax {
		return output
	}
	return output[:logMax] + fmt.Sprintf("… (%d bytes in all; the execution record has more)", len(output))
}

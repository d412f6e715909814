// Command testplugin is an action plugin whose behaviour each event chooses,
// for the plugin host's tests: echo, print, fail, crash, crash-once, panic,
// sleep, pid, environ, child. Its start-up check fails with check-fail; with
// ignore-event it says it does not read the event.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/postee-dev/postee/sdk"
)

type settings struct {
	Reject    bool   `json:"reject"`
	Prefix    string `json:"prefix"`
	CheckFail bool   `json:"check-fail"`
	// IgnoreEvent makes ReadsEvent say false.
	IgnoreEvent bool `json:"ignore-event"`
}

type action struct{ s settings }

func (a *action) Configure(_ context.Context, cfg sdk.Config) error {
	if err := cfg.Settings.Decode(&a.s); err != nil {
		return err
	}
	if a.s.Reject {
		return sdk.SettingsErrorf("reject", "rejected as asked")
	}
	return nil
}

func (a *action) ReadsEvent() bool { return !a.s.IgnoreEvent }

func (a *action) Check(context.Context) error {
	if a.s.CheckFail {
		return sdk.SettingsErrorf("check-fail", "the check failed as asked")
	}
	return nil
}

func (a *action) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	var ev struct {
		Do     string `json:"do"`
		Marker string `json:"marker"`
	}
	_ = json.Unmarshal(ex.Event, &ev)
	switch ev.Do {
	case "print":
		fmt.Println(a.s.Prefix + ex.Message.Description)
	case "fail":
		return sdk.Result{Output: "partial"}, errors.New("failed as asked")
	case "fail-permanent":
		return sdk.Result{}, sdk.Permanentf("failed for good")
	case "crash":
		os.Exit(3)
	case "panic":
		go panic("boom: crashed as asked") // outside the SDK's recover
		<-ctx.Done()
	case "crash-once":
		if _, err := os.Stat(ev.Marker); err != nil {
			_ = os.WriteFile(ev.Marker, []byte("x"), 0o600)
			os.Exit(3)
		}
	case "sleep":
		select {
		case <-ctx.Done():
			return sdk.Result{}, ctx.Err()
		case <-time.After(time.Minute):
		}
	case "pid":
		return sdk.Result{Output: fmt.Sprint(os.Getpid())}, nil
	case "environ":
		// The plugin's own environment, as the kernel has it.
		b, err := os.ReadFile("/proc/self/environ")
		if err != nil {
			return sdk.Result{}, err
		}
		return sdk.Result{Output: string(b)}, nil
	case "timerslack":
		// The timer slack of the thread running this execution: every
		// thread of the plugin has the one its process started with.
		ns, err := timerSlack()
		if err != nil {
			return sdk.Result{}, err
		}
		return sdk.Result{Output: fmt.Sprint(ns)}, nil
	case "child-fds":
		// What a child of the plugin holds open: only its standard
		// streams and the directory ls reads.
		out, err := exec.CommandContext(ctx, "/bin/sh", "-c", "exec ls -l /proc/self/fd").Output()
		return sdk.Result{Output: string(out)}, err
	case "child":
		// A child left running, in the plugin's process group.
		cmd := exec.Command("sleep", "300")
		if err := cmd.Start(); err != nil {
			return sdk.Result{}, err
		}
		go func() { _ = cmd.Wait() }()
		return sdk.Result{Output: fmt.Sprint(cmd.Process.Pid)}, nil
	}
	return sdk.Result{Output: a.s.Prefix + ex.Message.Description, Details: map[string]string{"attempt": fmt.Sprint(ex.Attempt), "resent": fmt.Sprint(ex.Resent),
		"event-bytes": fmt.Sprint(len(ex.Event))}}, nil
}

func main() {
	sdk.Serve(sdk.Plugin{Type: "test", New: func() sdk.Action { return &action{} }})
}

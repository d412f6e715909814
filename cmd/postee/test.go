package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/dryrun"
	"github.com/postee-dev/postee/core/pluginhost"
	"github.com/postee-dev/postee/core/server"
)

// exitError carries an exit status other than 1 out of a command (main
// exits with it); err may be nil when the output already says it all.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitCode is the process's exit status for a command's error.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

type testOptions struct {
	event, route, output, runner, execute string
}

func newTestCmd(o *options, stdout, stderr io.Writer) *cobra.Command {
	var t testOptions
	cmd := &cobra.Command{
		Use:   "test --event FILE",
		Short: "Show what the config does with an event, without doing it (or run one action with --execute)",
		Long: `test loads the config as postee would, then, for each event of --event (a
JSON object, a JSON array of them, or JSON lines; - reads stdin), reports
for every route whether it matches (and, with input-files, which file
decided), the message its template renders, what de-duplication and
aggregation would do with it (across the events of the input, starting from
an empty store), and the actions that would run: where (here, or which
runner, as a controller places them; runs-on: "@origin" uses the event's
postee_runner or --runner) and in which order (serialize-actions).

Nothing is executed, no store is opened, no plugin is started, and no
secret needs to be set.

Exit status: 0 when a route matched an event, 1 when none did, 2 on an
error (the config does not load, an event is not a JSON object, a route or
template fails on an event).

--execute ACTION runs that one action once, for real, on the event (one
event), with the message of the route that lists it (the first matching
one, or --route): its plugin is started and its secrets are read from this
environment. Exit status 0 when it succeeded, 1 when it failed, 2 when it
could not run.`,
		Example: `  postee test --cfgfile cfg.yaml --event event.json
  trivy image -f json alpine:3.18 | postee test --event - --output json
  postee test --event events.jsonl --route critical
  postee test --event event.json --execute my-webhook`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.applyEnv()
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			err := runTest(ctx, o, t, cmd.InOrStdin(), stdout, stderr)
			var ee *exitError
			if err != nil && !errors.As(err, &ee) {
				err = &exitError{code: 2, err: err}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&t.event, "event", "", "event file: a JSON object, a JSON array of them, or JSON lines; - reads stdin (required)")
	f.StringVar(&t.route, "route", "", "test only this route (as POST /tenant/{route})")
	f.StringVar(&t.output, "output", "text", "report format: text or json")
	f.StringVar(&t.runner, "runner", "", `the runner the producer names (as the X-Postee-Runner header), for runs-on: "@origin"`)
	f.StringVar(&t.execute, "execute", "", "run this action once, for real, on the event (not a dry run)")
	_ = cmd.MarkFlagRequired("event")
	return cmd
}

func runTest(ctx context.Context, o *options, t testOptions, stdin io.Reader, stdout, stderr io.Writer) error {
	if t.output != "text" && t.output != "json" {
		return fmt.Errorf("--output must be text or json, not %q", t.output)
	}
	raws, err := readTestEvents(t.event, stdin)
	if err != nil {
		return err
	}
	cfg, err := config.LoadFile(o.cfgFile)
	if err != nil {
		return err
	}
	log := newLogger(o, stderr)
	opts := dryrun.Options{FiltersDir: filtersDir(), TemplatesDir: o.templatesDir, Route: t.route, Runner: t.runner, Logger: log}
	if t.execute != "" {
		return runExecute(ctx, o, cfg, dryrun.ExecuteOptions{Options: opts, Action: t.execute}, raws, t.output == "json", stdout, stderr)
	}
	tester, err := dryrun.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	var sum dryrun.Summary
	reps := make([]*dryrun.Report, 0, len(raws))
	for i, raw := range raws {
		rep := tester.Test(ctx, i+1, raw)
		sum.Add(rep)
		reps = append(reps, rep)
		if t.output == "text" {
			if err := dryrun.WriteText(stdout, rep); err != nil {
				return err
			}
		}
	}
	if t.output == "json" {
		if err := dryrun.WriteJSON(stdout, reps); err != nil {
			return err
		}
	}
	switch sum.ExitCode() {
	case 2:
		return &exitError{code: 2, err: fmt.Errorf("%d of %d %s failed (see the report)", sum.Failed, sum.Events, plural(sum.Events, "event"))}
	case 1:
		return &exitError{code: 1, err: dryrun.ErrNoMatch}
	}
	return nil
}

// readTestEvents reads --event: a file, or stdin for "-".
func readTestEvents(name string, stdin io.Reader) ([][]byte, error) {
	if name == "-" {
		return dryrun.ReadEvents("stdin", stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return dryrun.ReadEvents(name, f)
}

func runExecute(ctx context.Context, o *options, cfg *config.Config, opts dryrun.ExecuteOptions, raws [][]byte, asJSON bool, stdout, stderr io.Writer) error {
	if len(raws) != 1 {
		return fmt.Errorf("--execute runs one action on one event; the input has %d events", len(raws))
	}
	sums, err := o.checksums()
	if err != nil {
		return err
	}
	// A plugin's own stdout (the stdout action prints there) stays apart
	// from a JSON report.
	pluginOut := stdout
	if asJSON {
		pluginOut = stderr
	}
	host := pluginhost.New(pluginhost.Options{Dir: o.pluginDir, Logger: newLogger(o, stderr), Stdout: pluginOut, Checksums: sums})
	defer host.Close()
	x, err := dryrun.Execute(ctx, cfg, opts, server.HostExecutor(host), raws[0])
	if err != nil {
		return err
	}
	if err := dryrun.WriteExecution(stdout, x, asJSON); err != nil {
		return err
	}
	if x.Status != "ok" {
		return &exitError{code: 1, err: fmt.Errorf("action %q failed: %s", x.Action, x.Error)}
	}
	return nil
}

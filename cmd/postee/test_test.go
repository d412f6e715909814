package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The fixtures of core/dryrun (its golden tests cover the reports).
var fixtures = filepath.Join("..", "..", "core", "dryrun", "testdata")

func TestTestCommandExitCodesAndInputs(t *testing.T) {
	t.Setenv("REGO_FILTERS_PATH", filepath.Join(fixtures, "filters"))
	for _, k := range []string{"POSTEE_CFG", "AQUAALERT_CFG", "REGO_TEMPLATES_PATH"} {
		t.Setenv(k, "")
	}
	cfg := filepath.Join(fixtures, "cfg.yaml")
	event := func(name string) string { return filepath.Join(fixtures, "events", name) }
	read := func(name string) string {
		b, err := os.ReadFile(event(name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cases := []struct {
		name   string
		args   []string
		stdin  string
		exit   int
		stdout []string // substrings
		stderr string
		// golden: stdout is exactly this file of core/dryrun's goldens.
		golden string
	}{
		{name: "match", args: []string{"--event", event("critical.json")}, exit: 0,
			stdout: []string{`route "critical" (line 4): matches (input)`, "1. print (stdout)", "2. hook (http)"}},
		{name: "no match", args: []string{"--event", event("nothing.json")}, exit: 1,
			stdout: []string{"event 1: 0 of 6 routes match"}, stderr: "no route matched"},
		{name: "stdin", args: []string{"--event", "-"}, stdin: read("quay.json"), exit: 0,
			stdout: []string{`input-files: "allow-quay.rego" allows it`}, golden: "input-files.txt"},
		{name: "stdin json", args: []string{"--event", "-", "--output", "json"}, stdin: read("batch.json"), exit: 0, golden: "aggregated.json"},
		{name: "stdin all json lines", args: []string{"--event", "-"}, stdin: read("dup.jsonl"), exit: 0, golden: "deduplicated.txt"},
		{name: "stdin json lines", args: []string{"--event", "-", "--route", "unique"}, stdin: read("dup.jsonl"), exit: 0,
			stdout: []string{"event 3: 1 of 1 route matches", "dropped: event 1 had the same key"}},
		{name: "array", args: []string{"--event", event("batch.json"), "--route", "batched"}, exit: 0,
			stdout: []string{"event 1:", "event 2:", "event 3:", "batch complete (events 1, 2, 3)"}},
		{name: "one route that does not match", args: []string{"--event", event("critical.json"), "--route", "registry"}, exit: 1},
		{name: "unknown route", args: []string{"--event", event("critical.json"), "--route", "nope"}, exit: 2, stderr: `no route "nope"`},
		{name: "not an object", args: []string{"--event", "-"}, stdin: `[1]`, exit: 2, stderr: "stdin: event 1:"},
		{name: "bad json", args: []string{"--event", "-"}, stdin: "{\"a\":1}\n{\"a\":", exit: 2, stderr: "invalid JSON"},
		{name: "empty stdin", args: []string{"--event", "-"}, exit: 2, stderr: "the input is empty"},
		{name: "missing config", args: []string{"--event", event("critical.json"), "--cfgfile", "nope.yaml"}, exit: 2, stderr: "nope.yaml"},
		{name: "bad output", args: []string{"--event", event("critical.json"), "--output", "yaml"}, exit: 2, stderr: "--output must be text or json"},
		{name: "execute needs one event", args: []string{"--event", event("batch.json"), "--execute", "print"}, exit: 2, stderr: "one event"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			root := newRootCmd(&stdout, &stderr)
			root.SetIn(strings.NewReader(tc.stdin))
			root.SetArgs(append([]string{"test", "--cfgfile", cfg, "--rego-templates", filepath.Join(fixtures, "templates")}, tc.args...))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := root.ExecuteContext(ctx)
			code := 0
			if err != nil {
				code = exitCode(err)
				stderr.WriteString(err.Error())
			}
			if code != tc.exit {
				t.Errorf("exit %d, want %d (error: %v)\nstdout:\n%s", code, tc.exit, err, stdout.String())
			}
			for _, want := range tc.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			if tc.golden != "" {
				want, err := os.ReadFile(filepath.Join(fixtures, "golden", tc.golden))
				if err != nil {
					t.Fatal(err)
				}
				if stdout.String() != string(want) {
					t.Errorf("stdout differs from %s:\n%s", tc.golden, stdout.String())
				}
			}
			if tc.stderr != "" && !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr.String())
			}
		})
	}
}

func TestTestCommandJSONIsOneDocument(t *testing.T) {
	t.Setenv("REGO_FILTERS_PATH", filepath.Join(fixtures, "filters"))
	var stdout, stderr bytes.Buffer
	root := newRootCmd(&stdout, &stderr)
	root.SetArgs([]string{"test", "--cfgfile", filepath.Join(fixtures, "cfg.yaml"), "--rego-templates", filepath.Join(fixtures, "templates"),
		"--event", filepath.Join(fixtures, "events", "dup.jsonl"), "--output", "json"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Events []struct {
			Event   int  `json:"event"`
			Matched bool `json:"matched"`
		} `json:"events"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout.String())
	}
	if len(doc.Events) != 3 || doc.Events[2].Event != 3 || !doc.Events[0].Matched {
		t.Errorf("events %+v", doc.Events)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestStatePaths(t *testing.T) {
	tmp := t.TempDir()
	// A directory below a regular file can be made by nobody, root included.
	blocker := filepath.Join(tmp, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	writable := filepath.Join(tmp, "server", "database")
	state := filepath.Join(tmp, "state")
	tests := []struct {
		name, pathToDB, defaultDir, runner string
		wantDB, wantDir, wantLog           string
	}{
		{"PATH_TO_DB wins", filepath.Join(tmp, "x", "my.db"), writable, "r1", filepath.Join(tmp, "x", "my.db"), filepath.Join(tmp, "x"), ""},
		{"default", "", writable, "", filepath.Join(writable, "webhooks.db"), writable, ""},
		{"a runner's own store", "", writable, "postee-runner-1", filepath.Join(writable, "webhooks-postee-runner-1.db"), writable, ""},
		{"not writable: per-user", "", filepath.Join(blocker, "db"), "", filepath.Join(state, "postee", "webhooks.db"), filepath.Join(state, "postee"),
			"the default state directory is not writable; using a per-user one (set PATH_TO_DB to choose): default=" + filepath.Join(blocker, "db") + " using=" + filepath.Join(state, "postee")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH_TO_DB", tt.pathToDB)
			t.Setenv("XDG_STATE_HOME", state)
			old := defaultDataDir
			defaultDataDir = tt.defaultDir
			defer func() { defaultDataDir = old }()
			var logs strings.Builder
			log := hclog.New(&hclog.LoggerOptions{Output: &logs, DisableTime: true})
			db, dir := statePaths(tt.runner, log)
			if db != tt.wantDB || dir != tt.wantDir {
				t.Errorf("statePaths = %s, %s; want %s, %s", db, dir, tt.wantDB, tt.wantDir)
			}
			if !strings.Contains(logs.String(), tt.wantLog) || (tt.wantLog == "" && logs.Len() > 0) {
				t.Errorf("log = %q, want %q", logs.String(), tt.wantLog)
			}
		})
	}
}

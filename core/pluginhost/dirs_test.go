package pluginhost

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --plugin-dir is a path list: plugins of every directory are found, the
// first directory holding a type wins, and unreadable ones are skipped.
func TestAvailablePathList(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, f := range []string{filepath.Join(a, "postee-action-exec"), filepath.Join(b, "postee-action-exec"), filepath.Join(b, "postee-action-acme")} {
		if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(a, "missing")
	list := strings.Join([]string{missing, a, b}, string(filepath.ListSeparator))
	got, err := Available(list)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["exec"] != filepath.Join(a, "postee-action-exec") || got["acme"] != filepath.Join(b, "postee-action-acme") {
		t.Errorf("Available(%q) = %v", list, got)
	}
	if _, err := Available(missing); err == nil {
		t.Error("no readable directory: want an error")
	}
	e := &MissingPluginError{Action: "x", Type: "Pigeon", Dir: list, Available: []string{"acme", "exec"}}
	want := `action "x": no plugin for type "Pigeon": looked for an executable postee-action-pigeon in ` + list + ` (available types: acme, exec)`
	if e.Error() != want {
		t.Errorf("%q\nwant %q", e.Error(), want)
	}
}

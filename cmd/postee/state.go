package main

import (
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
)

// defaultDataDir is where postee keeps its state when PATH_TO_DB is not
// set, as the existing Postee did.
var defaultDataDir = "/server/database"

// statePaths decides the store file (PATH_TO_DB) and the directory of the
// rest of postee's state (JetStream, a runner's work queue).
//
//   - PATH_TO_DB set: that file, and its directory.
//   - Otherwise /server/database, or, where that cannot be written (postee
//     not run as root), a per-user state directory ($XDG_STATE_HOME/postee,
//     else ~/.local/state/postee); the choice is logged.
//   - A runner's default store is its own, webhooks-<runner>.db, so a
//     controller and runners on one host do not share a file.
func statePaths(runner string, log hclog.Logger) (dbPath, dataDir string) {
	if v, ok := env("PATH_TO_DB"); ok && v != "" {
		return v, filepath.Dir(v)
	}
	dataDir = defaultDataDir
	if !writableDir(dataDir) {
		if alt := userStateDir(); alt != "" && writableDir(alt) {
			log.Info("the default state directory is not writable; using a per-user one (set PATH_TO_DB to choose)",
				"default", dataDir, "using", alt)
			dataDir = alt
		}
	}
	name := "webhooks.db"
	if runner != "" {
		name = "webhooks-" + runner + ".db"
	}
	return filepath.Join(dataDir, name), dataDir
}

// userStateDir is $XDG_STATE_HOME/postee, else ~/.local/state/postee.
func userStateDir() string {
	if v := os.Getenv("XDG_STATE_HOME"); v != "" && filepath.IsAbs(v) {
		return filepath.Join(v, "postee")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".local", "state", "postee")
}

// writableDir reports whether dir exists or can be made, and files can be
// created in it.
func writableDir(dir string) bool {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false
	}
	f, err := os.CreateTemp(dir, ".postee-write-check-*")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

package server

import (
	"context"
	"crypto/sha256"
	"os"
	"time"
)

// watchConfig reloads the config file when its content changes
// (--watch-config), as SIGHUP and /reload do: the new config is compiled
// and its actions configured first, and swapped in only when all of that
// worked; the result is logged either way.
//
// The file is read and hashed every interval (1s), with no file-watching
// dependency: it follows the file through symlinks (a Kubernetes ConfigMap
// is updated by swapping a symlink, which inotify watchers of the file
// itself miss), and notices edits that keep the size and modification
// time. A content that was refused is not tried again until it changes.
func (srv *Server) watchConfig(ctx context.Context, interval time.Duration) {
	if srv.runner != nil {
		srv.log.Warn("--watch-config is ignored on a runner: its configuration comes from the controller")
		return
	}
	path := srv.s.CfgFile
	last, err := fileDigest(path)
	if err != nil {
		srv.log.Warn("config file cannot be read for --watch-config", "file", path, "error", err)
	}
	srv.log.Info("watching the config file for changes", "file", path, "interval", interval)
	t := time.NewTicker(interval)
	defer t.Stop()
	unreadable := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-srv.stopped:
			return
		case <-t.C:
		}
		d, err := fileDigest(path)
		if err != nil {
			if !unreadable {
				srv.log.Warn("config file cannot be read; the running configuration is kept", "file", path, "error", err)
			}
			unreadable = true
			continue
		}
		unreadable = false
		if d == last {
			continue
		}
		last = d
		srv.log.Info("config file changed; reloading", "file", path)
		if err := srv.Reload(ctx); err != nil {
			srv.log.Error("config change refused; the running configuration is kept", "file", path, "error", err)
			continue
		}
		srv.log.Info("configuration reloaded", "file", path, "trigger", "watch-config")
	}
}

// fileDigest is the sha256 of the file's content.
func fileDigest(path string) ([sha256.Size]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return sha256.Sum256(data), nil
}

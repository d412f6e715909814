//go:build unix

package pluginhost

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwner refuses a plugin file or directory that someone other than
// root or the user postee runs as could change: writable by group or
// others, or owned by another user.
func checkOwner(path string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %04o); run: chmod go-w %s", path, perm, path)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := int(st.Uid); uid != 0 && uid != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, neither root nor the user postee runs as (uid %d); run: chown %d %s", path, uid, os.Geteuid(), os.Geteuid(), path)
	}
	return nil
}

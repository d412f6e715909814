package store

import (
	"fmt"
	"time"
)

// lockWait is how long Open waits for another process to release the store
// file before saying it is in use.
const lockWait = 500 * time.Millisecond

// InUseError says another process holds the store file.
type InUseError struct {
	Path string
	// PID is the process holding it, 0 when it cannot be told.
	PID int
}

func (e *InUseError) Error() string {
	who := "another postee"
	if e.PID > 0 {
		who = fmt.Sprintf("another postee (pid %d)", e.PID)
	}
	return fmt.Sprintf("store %s is in use by %s; give each postee its own PATH_TO_DB", e.Path, who)
}

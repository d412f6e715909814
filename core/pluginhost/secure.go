package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/postee-dev/postee/core/config"
)

// PermissionError says a plugin file, or a directory it is in, could be
// changed by someone other than root or the user postee runs as.
type PermissionError struct {
	Type, Path string
	Reason     string
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("plugin %s refused: %s", e.Type, e.Reason)
}

// checkPlugin resolves the plugin file path of type typ (following
// symlinks) and checks that the file, its directory and the plugin
// directory it was found in are owned by root or by postee's user and
// writable by no one else. It returns the resolved path, which is the file
// run.
func checkPlugin(typ, path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("plugin %s: %w", typ, err)
	}
	realDir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return "", fmt.Errorf("plugin %s: %w", typ, err)
	}
	checked := map[string]bool{}
	for _, p := range []string{real, filepath.Dir(real), realDir} {
		if checked[p] {
			continue
		}
		checked[p] = true
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("plugin %s: %w", typ, err)
		}
		if err := checkOwner(p, fi); err != nil {
			reason := err.Error()
			if p == real && real != path {
				reason += " (the target of " + path + ")"
			}
			return "", &PermissionError{Type: typ, Path: p, Reason: reason}
		}
	}
	return real, nil
}

// ParseChecksumFlag reads "type=sha256" (the --plugin-checksum flag).
func ParseChecksumFlag(s string) (string, []byte, error) {
	typ, sum, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(typ) == "" {
		return "", nil, fmt.Errorf("%q: want TYPE=SHA256, e.g. http=$(sha256sum postee-action-http | cut -d' ' -f1)", s)
	}
	b, err := config.ParseChecksum(sum)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", typ, err)
	}
	return strings.ToLower(strings.TrimSpace(typ)), b, nil
}

// fileSHA256 is the sha256 of the file at path, for messages.
func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable: " + err.Error()
	}
	return hex.EncodeToString(h.Sum(nil))
}

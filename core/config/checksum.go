package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// ParseChecksum reads a sha256 pin: 64 hexadecimal digits, optionally
// prefixed by "sha256:".
func ParseChecksum(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "sha256:")
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%q is not a sha256 checksum (64 hexadecimal digits, as sha256sum prints)", s)
	}
	return b, nil
}

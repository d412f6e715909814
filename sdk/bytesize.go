package sdk

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ByteSize is a size setting: a bare number of bytes or a number with a
// unit, "512", "64KB", "10MiB", "1G" (K/M/G are powers of 1024, as
// postee's own max-db-size).
type ByteSize int64

// Int64 returns the size in bytes.
func (b ByteSize) Int64() int64 { return int64(b) }

// ParseByteSize parses "1024", "64K", "64KB", "64KiB", "10M", "1G".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	n, err := strconv.ParseFloat(t[:i], 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q (use 1024, 64KB, 10MB or 1GB)", s)
	}
	mult := float64(1)
	switch strings.ToUpper(strings.TrimSpace(t[i:])) {
	case "", "B":
	case "K", "KB", "KIB":
		mult = 1 << 10
	case "M", "MB", "MIB":
		mult = 1 << 20
	case "G", "GB", "GIB":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("invalid size %q (use 1024, 64KB, 10MB or 1GB)", s)
	}
	return ByteSize(n * mult), nil
}

// UnmarshalJSON accepts a number of bytes or a string with a unit.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case float64:
		if x < 0 {
			return fmt.Errorf("negative size %s", data)
		}
		*b = ByteSize(x)
		return nil
	case string:
		n, err := ParseByteSize(x)
		if err != nil {
			return err
		}
		*b = n
		return nil
	}
	return fmt.Errorf("invalid size %s", data)
}

// MarshalJSON writes the number of bytes.
func (b ByteSize) MarshalJSON() ([]byte, error) { return json.Marshal(int64(b)) }

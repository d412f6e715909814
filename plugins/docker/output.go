package main

import (
	"fmt"
	"strings"
	"sync"
)

// The output kept per run: its start and its end, together under
// sdk.MaxOutput with room for the note saying what was left out.
const (
	headMax = 16 << 10
	tailMax = 44 << 10
	// maxLastLine bounds the line of output quoted in an error.
	maxLastLine = 256
)

// outputBuffer keeps the first headMax and the last tailMax bytes written to
// it, and counts the rest.
type outputBuffer struct {
	mu    sync.Mutex
	head  []byte
	tail  []byte
	total int64
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	b.total += int64(n)
	if room := headMax - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	switch {
	case len(p) == 0:
	case len(p) >= tailMax:
		b.tail = append(b.tail[:0], p[len(p)-tailMax:]...)
	default:
		b.tail = append(b.tail, p...)
		if len(b.tail) > 2*tailMax {
			b.tail = append(b.tail[:0], b.tail[len(b.tail)-tailMax:]...)
		}
	}
	return n, nil
}

// result returns the kept output as valid UTF-8 and how many bytes were
// written in all.
func (b *outputBuffer) result() (string, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tail := b.tail
	if len(tail) > tailMax {
		tail = tail[len(tail)-tailMax:]
	}
	kept := int64(len(b.head) + len(tail))
	var sb strings.Builder
	sb.Grow(len(b.head) + len(tail) + 64)
	sb.Write(b.head)
	if kept < b.total {
		fmt.Fprintf(&sb, "\n…[%d bytes of output omitted]…\n", b.total-kept)
	}
	sb.Write(tail)
	return strings.ToValidUTF8(sb.String(), "\uFFFD"), b.total
}

// lastLine returns the last non-blank line of out, trimmed and bounded.
func lastLine(out string) string {
	out = strings.TrimRight(out, " \t\r\n")
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	out = strings.TrimSpace(out)
	if len(out) > maxLastLine {
		out = strings.ToValidUTF8(out[:maxLastLine], "") + "…"
	}
	return out
}

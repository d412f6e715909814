package sdkoutput

import (
	"fmt"
	"strings"
	"sync"
)

// The output a zero Buffer keeps: its start and its end, together under
// sdk.MaxOutput with room for the note saying what was left out.
const (
	HeadMax = 16 << 10
	TailMax = 44 << 10
)

// Buffer keeps the first headMax and the last tailMax bytes written to it,
// and counts the rest. It is an io.Writer safe for concurrent use, so one
// Buffer can take a program's stdout and stderr in the order written. The
// zero Buffer keeps HeadMax and TailMax bytes.
type Buffer struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte
	limits  bool // headMax and tailMax are set
	headMax int
	tailMax int
	total   int64
}

// NewBuffer returns a Buffer keeping the first headMax and the last tailMax
// bytes.
func NewBuffer(headMax, tailMax int) *Buffer {
	return &Buffer{limits: true, headMax: headMax, tailMax: tailMax}
}

func (b *Buffer) bounds() (int, int) {
	if !b.limits {
		return HeadMax, TailMax
	}
	return b.headMax, b.tailMax
}

// Write keeps what fits and counts everything; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	headMax, tailMax := b.bounds()
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

// Result returns the kept output as valid UTF-8 (invalid bytes become
// U+FFFD), with `…[N bytes of output omitted]…` on a line of its own where
// bytes were left out; whether some were; and how many bytes were written
// in all.
func (b *Buffer) Result() (out string, truncated bool, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, tailMax := b.bounds()
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
	return strings.ToValidUTF8(sb.String(), "\uFFFD"), kept < b.total, b.total
}

// LastLine returns the last non-blank line of out, trimmed of spaces, cut
// to at most max bytes (on a UTF-8 boundary, "…" added): the line to quote
// in an error such as `exited with code 1: <last line>`.
func LastLine(out string, max int) string {
	out = strings.TrimRight(out, " \t\r\n")
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	out = strings.TrimSpace(out)
	if len(out) > max {
		cut := max
		for cut > 0 && out[cut]&0xC0 == 0x80 {
			cut--
		}
		out = out[:cut] + "…"
	}
	return out
}

package sdkoutput

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestBuffer(t *testing.T) {
	tests := []struct {
		name      string
		writes    []string
		want      string
		truncated bool
	}{
		{"empty", nil, "", false},
		{"fits", []string{"ab", "cd"}, "abcd", false},
		{"fills head and tail exactly", []string{"abcdefg"}, "abcdefg", false},
		{"one large write", []string{"abcdefghijkl"}, "abc\n…[5 bytes of output omitted]…\nijkl", true},
		{"many small writes", []string{"ab", "cd", "ef", "gh", "ij", "kl", "mn"}, "abc\n…[7 bytes of output omitted]…\nklmn", true},
		{"invalid UTF-8", []string{"a\xffb"}, "a\uFFFDb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuffer(3, 4)
			var total int64
			for _, w := range tt.writes {
				n, err := b.Write([]byte(w))
				if err != nil || n != len(w) {
					t.Fatalf("Write = %d, %v", n, err)
				}
				total += int64(n)
			}
			got, truncated, gotTotal := b.Result()
			if got != tt.want || truncated != tt.truncated || gotTotal != total {
				t.Fatalf("Result = %q, %v, %d; want %q, %v, %d", got, truncated, gotTotal, tt.want, tt.truncated, total)
			}
		})
	}
}

// TestZeroBuffer checks the default bounds: the first HeadMax and the last
// TailMax bytes, written concurrently as a program's stdout and stderr are.
func TestZeroBuffer(t *testing.T) {
	var b Buffer
	line := strings.Repeat("x", 99) + "\n"
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range 1000 {
				_, _ = b.Write([]byte(line))
			}
		})
	}
	wg.Wait()
	out, truncated, total := b.Result()
	if !truncated || total != 200_000 {
		t.Fatalf("truncated %v, total %d", truncated, total)
	}
	want := fmt.Sprintf("\n…[%d bytes of output omitted]…\n", 200_000-HeadMax-TailMax)
	if len(out) != HeadMax+TailMax+len(want) || !strings.Contains(out, want) {
		t.Fatalf("output of %d bytes: %.80q", len(out), out)
	}
}

func TestLastLine(t *testing.T) {
	long := strings.Repeat("é", 10)
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"", 8, ""},
		{"one", 8, "one"},
		{"one\ntwo\n\n  \n", 8, "two"},
		{"  padded  \n", 8, "padded"},
		{long, 20, long},
		{long, 10, long[:10] + "…"},
		{long, 9, long[:8] + "…"}, // not inside a character
	}
	for _, tt := range tests {
		if got := LastLine(tt.in, tt.max); got != tt.want {
			t.Errorf("LastLine(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

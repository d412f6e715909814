package main

import (
	"bytes"
	"os"
	"strconv"
	"testing"
)

// rssFile is the RssFile of /proc/self/status, in kB.
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("RssFile:")); ok {
			n, err := strconv.ParseInt(string(bytes.Fields(v)[0]), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

func TestDropStartPages(t *testing.T) {
	before := rssFile(t)
	if n := dropStartPages(); n <= 0 {
		t.Fatal("no read-only mapping of the executable advised")
	}
	after := rssFile(t)
	// The test binary has run the code of its packages' init and of the
	// tests before this one; most of those pages are now out of its RSS.
	if after >= before {
		t.Errorf("RssFile %d kB before, %d kB after: nothing dropped", before, after)
	}
	// The process still runs: code and constant data fault back in.
	if got := memoryLimit(true); got <= 0 {
		t.Errorf("memoryLimit after dropping pages: %d", got)
	}
	t.Logf("RssFile %d kB → %d kB", before, after)
}

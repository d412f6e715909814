package main

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestEncodeEventHeader(t *testing.T) {
	// Long, then short, then long again: a reused buffer must not leak a
	// previous description's bytes into the next header.
	for _, desc := range []string{
		strings.Repeat("Image alpine:3.18 has CVE-2024-0001 (critical)\n", 200),
		"",
		"a",
		"ab",
		"short ✓",
		strings.Repeat("x", 3*maxEventHeader/4),
		strings.Repeat("long description ", 50),
	} {
		if got, want := encodeEventHeader(desc), base64.StdEncoding.EncodeToString([]byte(desc)); got != want {
			t.Fatalf("encodeEventHeader(%d bytes) = %.40q..., want %.40q...", len(desc), got, want)
		}
	}
}

func TestEncodeEventHeaderAllocations(t *testing.T) {
	desc := strings.Repeat("Image alpine:3.18 has CVE-2024-0001 (critical)\n", 200)
	encodeEventHeader(desc) // fill the pool
	// 1 is the header string; under -race sync.Pool drops a quarter of
	// what is put back, hence the margin (the code before the pool made 2).
	if n := testing.AllocsPerRun(100, func() { encodeEventHeader(desc) }); n >= 1.5 {
		t.Errorf("encodeEventHeader allocates %.2f times a call, want 1 (the header string)", n)
	}
}

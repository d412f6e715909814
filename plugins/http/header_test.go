package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

func TestEncodeEventHeader(t *testing.T) {
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
	// Every length's tail (the vector encoder works in blocks), over every
	// byte value.
	all := make([]byte, 0, 512)
	for i := range 512 {
		all = append(all, byte(i*7))
	}
	for n := range len(all) + 1 {
		desc := string(all[:n])
		if got, want := encodeEventHeader(desc), base64.StdEncoding.EncodeToString(all[:n]); got != want {
			t.Fatalf("encodeEventHeader of %d bytes = %q, want %q", n, got, want)
		}
	}
}

func TestEncodeEventHeaderAllocations(t *testing.T) {
	desc := strings.Repeat("Image alpine:3.18 has CVE-2024-0001 (critical)\n", 200)
	// 1 is the header string, encoded in place: no copy of the description
	// and none of the encoding.
	if n := testing.AllocsPerRun(100, func() { encodeEventHeader(desc) }); n != 1 {
		t.Errorf("encodeEventHeader allocates %.2f times a call, want 1 (the header string)", n)
	}
}

// The description is the request body as it is: choosing the body and its
// content type copies nothing (a description is often many kilobytes).
func TestBodyIsTheDescription(t *testing.T) {
	desc := "{\n  \"image\": \"alpine:3.18\",\n  \"vulnerabilities\": [" + strings.Repeat(`"CVE-2024-0001",`, 300) + "\"\"]\n}"
	a := &httpAction{}
	ex := &sdk.Execution{Message: sdk.Message{Description: desc}}
	body, ctype, err := a.body(ex)
	if err != nil || body != desc || ctype != sdkhttp.ContentTypeJSON {
		t.Fatalf("body = %.20q, %q, %v; want the description, %q", body, ctype, err, sdkhttp.ContentTypeJSON)
	}
	if n := testing.AllocsPerRun(100, func() { _, _, _ = a.body(ex) }); n != 0 {
		t.Errorf("body allocates %.2f times a call, want 0", n)
	}
}

// Only a body with placeholders, or a body-file read at each run, reads
// the event; postee leaves the event out of the other actions' executions.
func TestReadsEvent(t *testing.T) {
	for _, tt := range []struct {
		settings string
		want     bool
	}{
		{`{"url":"http://127.0.0.1:1/","method":"POST"}`, false},
		{`{"url":"http://127.0.0.1:1/","method":"POST","body-content":"static text"}`, false},
		{`{"url":"http://127.0.0.1:1/","method":"POST","body-content":"{\"id\": \"event.input.id\"}"}`, true},
		{`{"url":"http://127.0.0.1:1/","method":"POST","body-file":"/nonexistent/body.txt"}`, true},
	} {
		s, err := sdk.ParseSettings([]byte(tt.settings))
		if err != nil {
			t.Fatal(err)
		}
		a := &httpAction{}
		if err := a.Configure(context.Background(), sdk.Config{Name: "h", Settings: s}); err != nil {
			t.Fatalf("%s: %v", tt.settings, err)
		}
		if got := a.ReadsEvent(); got != tt.want {
			t.Errorf("%s: ReadsEvent = %t, want %t", tt.settings, got, tt.want)
		}
	}
}

// go test -run '^$' -bench EncodeEventHeader ./plugins/http: the header
// for a 6.7 KB description, and encoding/base64 on the same bytes.
func BenchmarkEncodeEventHeader(b *testing.B) {
	desc := strings.Repeat("{\n  \"image\": \"alpine:3.18\", \"CVE-2024-0001\": \"critical\"\n", 120)
	b.Run("header", func(b *testing.B) {
		b.SetBytes(int64(len(desc)))
		b.ReportAllocs()
		for b.Loop() {
			encodeEventHeader(desc)
		}
	})
	b.Run("encoding-base64", func(b *testing.B) {
		b.SetBytes(int64(len(desc)))
		b.ReportAllocs()
		for b.Loop() {
			base64.StdEncoding.EncodeToString([]byte(desc))
		}
	})
}

package webhook

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/postee-dev/postee/internal/testevents"
)

func TestReadBody(t *testing.T) {
	const limit = 100
	body := strings.Repeat("x", 60)
	tests := []struct {
		name    string
		r       io.Reader
		size    int64
		want    string
		wantErr error // errors.Is; nil: success
		tooBig  bool  // a *http.MaxBytesError
	}{
		{name: "declared", r: strings.NewReader(body), size: 60, want: body},
		{name: "declared, one byte at a time", r: iotest.OneByteReader(strings.NewReader(body)), size: 60, want: body},
		{name: "unknown length", r: strings.NewReader(body), size: -1, want: body},
		{name: "empty", r: strings.NewReader(""), size: 0, want: ""},
		{name: "at the limit", r: strings.NewReader(strings.Repeat("y", limit)), size: limit, want: strings.Repeat("y", limit)},
		{name: "shorter than declared", r: strings.NewReader(body), size: 80, wantErr: io.ErrUnexpectedEOF},
		{name: "longer than declared", r: strings.NewReader(body + "zz"), size: 60, want: body + "zz"},
		{name: "declared over the limit", r: strings.NewReader(strings.Repeat("y", limit+1)), size: limit + 1, tooBig: true},
		{name: "unknown length over the limit", r: strings.NewReader(strings.Repeat("y", limit+1)), size: -1, tooBig: true},
		{name: "declared at the limit, more sent", r: strings.NewReader(strings.Repeat("y", limit+5)), size: limit, tooBig: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(tt.r), limit)
			got, err := readBody(r, tt.size, limit)
			var mbe *http.MaxBytesError
			switch {
			case tt.tooBig:
				if !errors.As(err, &mbe) {
					t.Fatalf("err = %v, want a MaxBytesError", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case string(got) != tt.want:
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// A body of declared length is read with one allocation of its size.
func TestReadBodyAllocatesOnce(t *testing.T) {
	raw := testevents.Trivy(1, 20)
	var r bytes.Reader
	allocs := testing.AllocsPerRun(50, func() {
		r.Reset(raw)
		b, err := readBody(&r, int64(len(raw)), 1<<20)
		if err != nil || len(b) != len(raw) || cap(b) > len(raw)+1 {
			t.Fatalf("len %d cap %d err %v", len(b), cap(b), err)
		}
	})
	if allocs > 1 {
		t.Errorf("%.1f allocations a body, want 1", allocs)
	}
}

// Through a real server: a body with Content-Length and a chunked one.
func TestHandlerBodies(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(NewHandler(Options{Submitter: rec, Classify: classify, MaxBodySize: 64 << 10}))
	defer srv.Close()
	raw := testevents.Trivy(1, 20)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(raw)
		if chunked {
			body = io.MultiReader(bytes.NewReader(raw[:100]), bytes.NewReader(raw[100:])) // no length known
		}
		req, err := http.NewRequest("POST", srv.URL+"/", body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("chunked %v: status %d", chunked, resp.StatusCode)
		}
	}
	if len(rec.events) != 2 || !bytes.Equal(rec.events[0].Raw, raw) || !bytes.Equal(rec.events[1].Raw, raw) {
		t.Errorf("submitted %d events, or not the bytes sent", len(rec.events))
	}
}

package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

// A body-file missing when the action is configured is not an error (it may
// be put there later); a run while it is missing fails permanently with a
// clear message and sends nothing; once it appears it is read at each run.
func TestBodyFileMissingAtConfigure(t *testing.T) {
	file := filepath.Join(t.TempDir(), "body.txt")
	rec := newRecorder(t, http.StatusOK, "ok")
	h := newHarness(t)
	h.MustConfigure("later", map[string]any{"url": rec.URL, "method": "POST", "body-file": file})

	out := h.Execute("later", sdktest.Event(`{"image":"alpine"}`, sdk.Message{Description: "d"}))
	want := "build body: body-file: " + file + " does not exist on this machine (no such file)"
	if out.OK() || out.Retryable || out.Err != want {
		t.Fatalf("err %q retryable %v, want permanent %q", out.Err, out.Retryable, want)
	}
	if err := os.WriteFile(file, []byte("image event.input.image"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := h.Execute("later", sdktest.Event(`{"image":"alpine"}`, sdk.Message{Description: "d"})); !out.OK() {
		t.Fatalf("after the file appeared: %s", out.Err)
	}
	if got := rec.Only(t); string(got.Body) != "image alpine" {
		t.Errorf("body = %q", got.Body)
	}
}

package template

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postee-dev/postee/internal/testevents"
)

// TestReportGolden renders Trivy reports and Aqua scans of 20 and 1000
// vulnerabilities with each report template and compares the message,
// byte for byte (a JSON description as it is, not re-indented), with
// testdata/report/<template>-<scanner>-<n>.golden (gzipped when large).
// The events come from testevents, which is deterministic; -update
// rewrites the golden files.
func TestReportGolden(t *testing.T) {
	for _, pkg := range testevents.ReportTemplates {
		r := compile(t, Spec{Name: pkg, RegoPackage: pkg})
		for _, ev := range testevents.Reports {
			for _, n := range []int{20, 1000} {
				name := fmt.Sprintf("%s-%s-%d", strings.TrimPrefix(pkg, "postee."), ev.Name, n)
				t.Run(name, func(t *testing.T) {
					m, err := r.Render(context.Background(), Input(parse(t, ev.Event(n)), "https://aqua.example.com/"))
					if err != nil {
						t.Fatal(err)
					}
					got := goldenText(t, m, false)
					path := filepath.Join("testdata", "report", name+".golden")
					if *update {
						writeGolden(t, path, got)
					}
					want := readGolden(t, path)
					if got != want {
						t.Errorf("%s differs from the rendered message (first difference at byte %d)", path, firstDiff(got, want))
					}
				})
			}
		}
	}
}

// goldenGzipOver is the size from which a golden file is stored gzipped.
const goldenGzipOver = 64 << 10

func writeGolden(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	os.Remove(path + ".gz")
	if len(text) <= goldenGzipOver {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write([]byte(text))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".gz", buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readGolden(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err == nil {
		return string(b)
	}
	f, err := os.Open(path + ".gz")
	if err != nil {
		t.Fatalf("no golden file %s (run go test -run TestReportGolden -update): %v", path, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func firstDiff(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

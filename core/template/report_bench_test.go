package template

import (
	"fmt"
	"strings"
	"testing"

	"github.com/postee-dev/postee/internal/testevents"
)

// BenchmarkRenderReport renders Trivy reports and Aqua scans of 20, 100
// and 1000 vulnerabilities with each report template, e.g.
// BenchmarkRenderReport/vuls.html/trivy-1000.
func BenchmarkRenderReport(b *testing.B) {
	for _, pkg := range testevents.ReportTemplates {
		b.Run(strings.TrimPrefix(pkg, "postee."), func(b *testing.B) {
			for _, ev := range testevents.Reports {
				for _, n := range []int{20, 100, 1000} {
					b.Run(fmt.Sprintf("%s-%d", ev.Name, n), func(b *testing.B) {
						benchRenderSpec(b, Spec{RegoPackage: pkg}, ev.Event(n))
					})
				}
			}
		})
	}
}

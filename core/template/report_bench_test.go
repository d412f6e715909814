package template

import (
	"fmt"
	"strings"
	"testing"

	"github.com/postee-dev/postee/internal/testevents"
)

// reportTemplates are the bundled templates that list every vulnerability
// of a scan report.
var reportTemplates = []string{"postee.vuls.html", "postee.vuls.slack", "postee.vuls.trivy.slack", "postee.trivy.jira"}

// reportEvents are the scan reports they are measured on, by scanner.
var reportEvents = []struct {
	name  string
	event func(n int) []byte
}{
	{"trivy", func(n int) []byte { return testevents.TrivyReport("registry.example.com/team/web:1.4.2", n) }},
	{"aqua", func(n int) []byte { return testevents.AquaScan("registry.example.com/team/web:1.4.2", n) }},
}

// BenchmarkRenderReport renders Trivy reports and Aqua scans of 20, 100
// and 1000 vulnerabilities with each report template, e.g.
// BenchmarkRenderReport/vuls.html/trivy-1000.
func BenchmarkRenderReport(b *testing.B) {
	for _, pkg := range reportTemplates {
		b.Run(strings.TrimPrefix(pkg, "postee."), func(b *testing.B) {
			for _, ev := range reportEvents {
				for _, n := range []int{20, 100, 1000} {
					b.Run(fmt.Sprintf("%s-%d", ev.name, n), func(b *testing.B) {
						benchRenderSpec(b, Spec{RegoPackage: pkg}, ev.event(n))
					})
				}
			}
		})
	}
}

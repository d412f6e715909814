package testevents

// ReportTemplates are the bundled templates that list every vulnerability
// of a scan report: the rich templates of the speed goals, measured by
// `make bench` and by the template package's benchmarks, and checked
// against golden files.
var ReportTemplates = []string{"postee.vuls.html", "postee.vuls.slack", "postee.vuls.trivy.slack", "postee.trivy.jira"}

// ReportImage is the image the generated reports scanned.
const ReportImage = "registry.example.com/team/web:1.4.2"

// Report is a generated scan report of one scanner.
type Report struct {
	// Name is the scanner: "trivy" or "aqua".
	Name string
	// Event returns the report of ReportImage with vulns vulnerabilities.
	Event func(vulns int) []byte
}

// Reports are the scan reports ReportTemplates are measured and checked on:
// a Trivy report and an Aqua scan.
var Reports = []Report{
	{"trivy", func(n int) []byte { return TrivyReport(ReportImage, n) }},
	{"aqua", func(n int) []byte { return AquaScan(ReportImage, n) }},
}

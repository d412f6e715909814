# An image scan report as HTML (for email, ServiceNow, Teams...): the
# image, its registry, digest and OS, the compliance verdict of an Aqua
# scan, a summary table of the vulnerabilities by severity, and one table
# per severity listing each vulnerability with a link to its advisory.
# Reads Aqua scans, Trivy reports and Trivy Operator VulnerabilityReports
# (see postee.lib.vuls). Every text of the event is HTML-escaped.
#
# url is the image's page in the Aqua console (Aqua scans, with
# aqua-server set). Aggregated messages are combined by
# postee.vuls.html.aggregation.
package postee.vuls.html

import data.postee.lib.html
import data.postee.lib.util
import data.postee.lib.vuls

title := vuls.title

url := vuls.url

severity := vuls.top_severity

aggregation_pkg := "postee.vuls.html.aggregation"

# result joins its parts in one concat, as severity_table joins each table's
# rows: every concat copies all it joins, and a large report's rows are most
# of the message.
result := concat("", array.concat(
	array.concat(
		[
			details,
			"<h3>Vulnerability summary</h3>\n",
			html.table([vuls.labels[s] | some s in shown], [[html.colored(s, vuls.counts[s]) | some s in shown]]),
			assurance,
		],
		[severity_table(s) | some s in vuls.order],
	),
	[more],
))

shown := vuls.shown(vuls.counts)

details := concat("", [
	html.field(name_label, vuls.artifact),
	html.field("Registry", vuls.registry),
	html.field("Digest", vuls.digest),
	html.field("OS", vuls.os),
	html.field("Workload", vuls.workload_text),
	concat("", [sprintf("<p>%s</p>\n", [fact]) | some fact in facts]),
])

name_label := "Image" if {
	vuls.format != "trivyoperator"
} else := "Artifact"

# facts are Aqua's verdicts, text of the template only.
facts := [f |
	vuls.format == "aqua"
	some f in [compliance, malware, sensitive]
	f != ""
]

compliance := "Image is non-compliant" if {
	input.image_assurance_results.disallowed == true
} else := "Image is compliant" if {
	input.image_assurance_results.disallowed == false
} else := ""

malware := sprintf("Malware found: %s", [yes_no(object.get(input, ["vulnerability_summary", "malware"], 0) > 0)]) if {
	input.scan_options.scan_malware == true
} else := ""

sensitive := sprintf("Sensitive data found: %s", [yes_no(object.get(input, ["vulnerability_summary", "sensitive"], 0) > 0)]) if {
	input.scan_options.scan_sensitive_data == true
} else := ""

yes_no(true) := "Yes"

yes_no(false) := "No"

# assurance is the table of Aqua's assurance checks, "" without checks.
assurance := concat("", [
	"<h3>Assurance controls</h3>\n",
	html.table(["#", "Control", "Policy name", "Status"], [[format_int(i + 1, 10), html.escape(util.text(c.control)), html.escape(util.text(c.policy_name)), status(c)] |
		some i, c in checks
	]),
]) if {
	count(checks) > 0
} else := ""

checks := [c | some c in input.image_assurance_results.checks_performed; is_object(c)] if vuls.format == "aqua"

default checks := []

status(c) := "FAIL" if {
	c.failed == true
} else := "PASS"

# severity_table(s) lists the vulnerabilities of severity s, "" when none.
severity_table(s) := concat("", array.concat(
	[sprintf("<h3>%s severity vulnerabilities</h3>\n", [vuls.labels[s]])],
	html.table_parts(headers, rows_by_severity[s]),
)) if {
	count(rows_by_severity[s]) > 0
} else := ""

# rows_by_severity are the table rows of each severity. The comprehension
# compares v.severity with s of the outer body, so OPA indexes it: one pass
# over the vulnerabilities for all severities. Each row is one call of
# postee's htmlrow builtin (cells escaped, the id a link to the advisory):
# a row written in Rego, an escape per cell and a function for the link,
# cost three quarters of the rendering.
rows_by_severity := {s: rows |
	some s in vuls.order
	rows := [htmlrow(
		[
			v.id,
			v.package,
			v.installed,
			util.otherwise(v.fixed, "none"),
			util.truncate(v.title, 200),
		],
		v.link,
	) |
		some v in vuls.vulnerabilities
		v.severity == s
	]
} if {
	vuls.format == "aqua"
} else := {s: rows |
	# the same rows with the Target column of Trivy reports
	some s in vuls.order
	rows := [htmlrow(
		[
			v.id,
			v.package,
			v.installed,
			util.otherwise(v.fixed, "none"),
			util.truncate(v.title, 200),
			v.target,
		],
		v.link,
	) |
		some v in vuls.vulnerabilities
		v.severity == s
	]
}

headers := ["Vulnerability", "Package", "Installed version", "Fixed version", "Description"] if {
	vuls.format == "aqua"
} else := ["Vulnerability", "Package", "Installed version", "Fixed version", "Title", "Target"]

more := sprintf("<p>See more: %s</p>\n", [html.link(vuls.url, vuls.url)]) if {
	vuls.url
} else := ""

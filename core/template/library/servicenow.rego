# An image scan report as a ServiceNow incident. result is an object with
# the fields of the incident table:
#
#   short_description  "<image> vulnerability scan report" (160 characters)
#   description        plain text: the image, registry, counts by severity,
#                      the most severe vulnerabilities and the Aqua link
#   work_notes         the HTML report of postee.vuls.html in [code] tags
#   category           "Security Image Scan results"
#   subcategory        "Security incident"
#   impact, urgency    1 when critical or high vulnerabilities were found,
#                      2 for medium, 3 otherwise
#   opened_at          when the scan ran, "YYYY-MM-DD hh:mm:ss" UTC
#   assigned_to        the owner of the Aqua application scope, when one
#   assignment_group   the Aqua application scope, when one
#
# (fields without a value are left out). The message fields carry the same
# for actions that read them: date (Unix seconds), severity (1 to 3),
# summary (the description), category, subcategory, assignedTo,
# assignedGroup, url. Reads Aqua scans, Trivy reports and Trivy Operator
# VulnerabilityReports (see postee.lib.vuls).
package postee.servicenow

import data.postee.lib.servicenow
import data.postee.lib.util
import data.postee.lib.vuls
import data.postee.vuls.html as report

title := servicenow.short_description(vuls.title)

url := vuls.url

date := servicenow.seconds(vuls.date_ns)

severity := servicenow.level(vuls.top_severity)

summary := description

category := "Security Image Scan results"

subcategory := "Security incident"

assignedTo := servicenow.assigned_to

assignedGroup := servicenow.assignment_group

result := servicenow.record({
	"short_description": title,
	"description": description,
	"work_notes": servicenow.work_notes(report.result),
	"category": category,
	"subcategory": subcategory,
	"impact": severity,
	"urgency": severity,
	"opened_at": object.get({"t": servicenow.opened_at(ns) | ns := vuls.date_ns}, "t", ""),
	"assigned_to": assignedTo,
	"assignment_group": assignedGroup,
})

max_listed := 20

description := concat("\n", array.concat(
	[l |
		some [name, value] in [
			["Image", vuls.artifact],
			["Registry", vuls.registry],
			["Workload", vuls.workload_text],
			["Vulnerabilities", vuls.summary_text],
			["See more", object.get({"u": u | u := vuls.url}, "u", "")],
		]
		value != ""
		l := sprintf("%s: %s", [name, value])
	],
	array.concat(
		[concat("", ["- ", v.id, " [", v.severity, "] ", v.package, " ", v.installed, fixed(v)]) |
			some v in array.slice(vuls.vulnerabilities, 0, max_listed)
		],
		[sprintf("… and %d more.", [count(vuls.vulnerabilities) - max_listed]) | count(vuls.vulnerabilities) > max_listed],
	),
))

fixed(v) := concat("", [" (fixed in ", v.fixed, ")"]) if {
	v.fixed != ""
} else := ""

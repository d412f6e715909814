# An image scan report as an Opsgenie alert. title is the alert message
# (at most 130 characters); result is an object with the alert fields the
# opsgenie action reads:
#
#   description  plain text: the image, the counts by severity and the most
#                severe vulnerabilities (at most 15000 characters)
#   alias        the alert's deduplication key: the image and its digest
#   entity       the image
#   priority     P1 (critical found), P2 (high), P3 (medium), P4 (low), P5
#   tags         ["postee", "vulnerability-scan", <top severity>]
#
# Reads Aqua scans, Trivy reports and Trivy Operator VulnerabilityReports
# (see postee.lib.vuls).
package postee.vuls.opsgenie

import data.postee.lib.util
import data.postee.lib.vuls

title := util.truncate(vuls.title, 130)

url := vuls.url

severity := vuls.top_severity

summary := vuls.summary_text

result := {
	"description": util.truncate(description, 15000),
	"alias": util.truncate(util.join_nonempty("@", [vuls.artifact, vuls.digest]), 512),
	"entity": util.truncate(vuls.artifact, 512),
	"priority": priorities[vuls.top_severity],
	"tags": [t | some t in ["postee", "vulnerability-scan", vuls.top_severity]; t != ""],
}

priorities := {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4", "negligible": "P5", "unknown": "P5", "": "P5"}

max_listed := 50

description := concat("\n", array.concat(
	[concat(": ", [name, value]) |
		some [name, value] in [
			[name_label, vuls.artifact],
			["Registry", vuls.registry],
			["Digest", vuls.digest],
			["Workload", vuls.workload_text],
			["Vulnerabilities", sprintf("%s (%d with a fix)", [vuls.summary_text, vuls.fixable])],
			["See more", object.get({"u": u | u := vuls.url}, "u", "")],
		]
		value != ""
	],
	array.concat(
		[""],
		array.concat(
			[line(v) | some v in array.slice(vuls.vulnerabilities, 0, max_listed)],
			[sprintf("… and %d more.", [count(vuls.vulnerabilities) - max_listed]) | count(vuls.vulnerabilities) > max_listed],
		),
	),
))

name_label := "Image" if {
	vuls.format != "trivyoperator"
} else := "Artifact"

line(v) := concat("", ["- ", v.id, " [", v.severity, "] ", v.package, " ", v.installed, fixed(v), link(v)])

fixed(v) := concat("", [" (fixed in ", v.fixed, ")"]) if {
	v.fixed != ""
} else := ""

link(v) := concat("", [" ", v.link]) if {
	v.link != ""
} else := ""

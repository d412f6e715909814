# A Trivy image report as a Slack message: Block Kit blocks with the title,
# the artifact facts, the counts by severity, then for each target of the
# report (the OS, each lock file or binary) its vulnerabilities, the most
# severe first, linked to their advisories. Also reads Aqua scans and Trivy
# Operator reports (grouped by their targets; see postee.lib.vuls).
#
# result is the array of blocks (postee sends it as JSON); event text in it
# is escaped for mrkdwn. Aggregated messages are combined by
# postee.vuls.slack.trivy.aggregation.
package postee.vuls.trivy.slack

import data.postee.lib.slack
import data.postee.lib.vuls
import data.postee.lib.vulsslack

title := vuls.title

url := vuls.url

severity := vuls.top_severity

aggregation_pkg := "postee.vuls.slack.trivy.aggregation"

result := array.concat(vulsslack.head, vulsslack.body(lines))

# lines are, for each target, a line naming it and a line per
# vulnerability.
lines := [l |
	some t in vuls.targets
	some l in array.concat([target_line(t)], [vulsslack.line(v) | some v in vuls.vulnerabilities; v.target == t])
]

target_line(t) := sprintf("*%s*%s", [slack.escape(target_name(t)), type_suffix(t)])

target_name("") := vuls.artifact

target_name(t) := t if t != ""

type_suffix(t) := sprintf(" (%s)", [slack.escape(types[0])]) if {
	types := [v.type | some v in vuls.vulnerabilities; v.target == t; v.type != ""]
	count(types) > 0
} else := ""

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

result := array.concat(vulsslack.head, vulsslack.body_of([line(e) | some e in array.slice(entries, 0, vulsslack.max_lines)], count(entries)))

# entries are the lines of the message: for each target, the target (a
# string) and the indexes in vuls.vulnerabilities of its vulnerabilities
# (numbers). Only the lines shown are written.
entries := [e |
	some t in vuls.targets
	some e in array.concat([t], indexes_by_target[t])
]

# indexes_by_target and types_by_target are the vulnerabilities' indexes
# and types of each target. Their comprehensions compare v.target with t of
# the outer body, so OPA indexes them: one pass over the vulnerabilities
# for all targets.
indexes_by_target := {t: indexes |
	some t in vuls.targets
	indexes := [i | some i, v in vuls.vulnerabilities; v.target == t]
}

types_by_target := {t: types |
	some t in vuls.targets
	types := [v.type | some v in vuls.vulnerabilities; v.target == t; v.type != ""]
}

line(t) := target_line(t) if is_string(t)

line(i) := vulsslack.line(vuls.vulnerabilities[i]) if is_number(i)

target_line(t) := sprintf("*%s*%s", [slack.escape(target_name(t)), type_suffix(t)])

target_name("") := vuls.artifact

target_name(t) := t if t != ""

type_suffix(t) := sprintf(" (%s)", [slack.escape(types_by_target[t][0])]) if {
	count(types_by_target[t]) > 0
} else := ""

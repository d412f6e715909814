# The parts of the bundled Slack messages of vulnerability reports
# (postee.vuls.slack, postee.vuls.trivy.slack, postee.trivyoperator.slack):
# the header, facts and counts blocks, one line per vulnerability, and the
# footer. Text of the event is escaped for mrkdwn.
package postee.lib.vulsslack

import data.postee.lib.slack
import data.postee.lib.util
import data.postee.lib.vuls

# max_lines bounds the lines of vulnerabilities (and of targets): with 10
# lines per section, the message stays well under Slack's 50 blocks.
max_lines := 150

lines_per_section := 10

# head are the first blocks: the title, the facts, the counts.
head := [
	slack.header(vuls.title),
	slack.fields(facts),
	slack.fields([sprintf("*%s:* %d", [vuls.labels[s], vuls.counts[s]]) | some s in vuls.shown(vuls.counts)]),
	slack.divider,
]

facts := array.concat(
	slack.labels([
		[name_label, vuls.artifact],
		["Registry", vuls.registry],
		["OS", vuls.os],
		["Workload", vuls.workload_text],
	]),
	aqua_facts,
)

name_label := "Image" if {
	vuls.format != "trivyoperator"
} else := "Artifact"

aqua_facts := [f |
	vuls.format == "aqua"
	some f in [compliance]
	f != ""
]

compliance := "*Compliance:* non-compliant" if {
	input.image_assurance_results.disallowed == true
} else := "*Compliance:* compliant" if {
	input.image_assurance_results.disallowed == false
} else := ""

# line(v) is one vulnerability: linked id, severity, package, installed
# and fixed versions.
line(v) := util.truncate(
	concat("", [
		"• ", slack.link(v.link, v.id),
		" *", v.severity,
		"* `", slack.escape(v.package),
		"` ", slack.escape(v.installed),
		", ", fix(v),
	]),
	290,
)

fix(v) := concat("", ["fixed in ", slack.escape(v.fixed)]) if {
	v.fixed != ""
} else := "no fix yet"

# body(lines) are the sections of lines (at most max_lines of them) and a
# footer saying how many were left out and where to see more.
body(lines) := body_of(array.slice(lines, 0, max_lines), count(lines))

# body_of(lines, n) is body for a message of n lines whose first max_lines
# are lines: a template need not write the lines that are left out.
body_of(lines, n) := array.concat(slack.sections(lines, lines_per_section), footer(n))

# first_lines are the lines of the first max_lines vulnerabilities.
first_lines := [line(v) | some v in array.slice(vuls.vulnerabilities, 0, max_lines)]

footer(n) := [slack.context(text)] if {
	text := util.join_nonempty(" ", [left_out(n), see_more])
	text != ""
} else := []

left_out(n) := sprintf("%s not listed.", [util.plural(n - max_lines, "more line")]) if {
	n > max_lines
} else := ""

see_more := sprintf("See more: %s", [slack.link(vuls.url, vuls.url)]) if {
	vuls.url
} else := ""

# The bundled Jira descriptions of vulnerability reports (postee.trivy.jira,
# postee.trivyoperator.jira), in Jira wiki markup: the facts, a summary
# table by severity and tables of vulnerabilities, the most severe first,
# grouped by target. Text of the event is escaped.
package postee.lib.vulsjira

import data.postee.lib.jira
import data.postee.lib.util
import data.postee.lib.vuls

# max_listed bounds the rows, to stay under Jira's 32767 characters.
max_listed := 100

description := concat("", [
	facts,
	"\nh3. Vulnerability summary\n",
	jira.table([vuls.labels[s] | some s in shown], [[colored(s, format_int(vuls.counts[s], 10)) | some s in shown]]),
	tables,
	footer,
])

shown := vuls.shown(vuls.counts)

facts := concat("", [sprintf("*%s:* %s\n", [name, jira.escape(value)]) |
	some [name, value] in [
		["Artifact", vuls.artifact],
		["Registry", vuls.registry],
		["Digest", vuls.digest],
		["OS", vuls.os],
		["Workload", vuls.workload_text],
	]
	value != ""
])

listed := array.slice(vuls.vulnerabilities, 0, max_listed)

headers := ["Vulnerability", "Severity", "Package", "Installed version", "Fixed version", "Title"]

tables := "" if {
	count(listed) == 0
} else := concat("", ["\nh3. Vulnerabilities\n", concat("", [target_table(t) | some t in vuls.targets])])

# target_table(t) is the table of t's listed vulnerabilities, with a
# heading naming the target when it is not the image itself.
target_table(t) := concat("", [heading(t), jira.table(headers, [row(v) | some v in rows])]) if {
	rows := [v | some v in listed; v.target == t]
	count(rows) > 0
} else := ""

heading("") := ""

heading(t) := sprintf("\nh4. %s\n", [jira.escape(t)]) if t != ""

row(v) := [
	jira.link(v.link, v.id),
	colored(v.severity, v.severity),
	jira.cell(v.package),
	jira.cell(v.installed),
	jira.cell(util.otherwise(v.fixed, "none")),
	jira.cell(util.truncate(v.title, 120)),
]

# colored(s, text) is text (markup already) in the color of severity s.
colored(s, text) := concat("", ["{color:", colors[s], "}*", text, "*{color}"]) if {
	colors[s]
} else := text

colors := {"critical": "#c00000", "high": "#e0443d", "medium": "#f79421", "low": "#b8a000"}

footer := concat("", [
	left_out,
	see_more,
])

left_out := sprintf("\n_%d more vulnerabilities are not listed._\n", [count(vuls.vulnerabilities) - max_listed]) if {
	count(vuls.vulnerabilities) > max_listed
} else := ""

see_more := sprintf("\nSee more: %s\n", [jira.link(vuls.url, vuls.url)]) if {
	vuls.url
} else := ""

# A Tracee finding as HTML: the signature (id, name, description), its
# severity and MITRE ATT&CK technique (linked), where it happened (host,
# container and image, pod, process), the event, what the signature
# reported (Data) and the event's arguments. Every text of the event is
# HTML-escaped.
#
# url is the MITRE ATT&CK page of the technique, when known; severity is
# info, low, medium, high or critical; category the finding's category.
package postee.tracee.html

import data.postee.lib.html
import data.postee.lib.tracee
import data.postee.lib.util

title := tracee.title

url := tracee.mitre_link if tracee.mitre_link != ""

severity := tracee.severity

category := tracee.category if tracee.category != ""

result := concat("", [
	sprintf("<h3>%s</h3>\n", [html.escape(concat("", [tracee.id, ": ", tracee.name]))]),
	paragraph(tracee.description),
	html.table(["Field", "Value"], [[html.escape(name), value] | some [name, value] in rows; value != ""]),
	finding_data,
	arguments,
])

# finding_data is what the signature reported (the finding's Data).
finding_data := concat("", [
	"<h4>Finding data</h4>\n",
	html.table(["Key", "Value"], [[html.escape(k), html.escape(util.text(v))] | some k, v in input.Data]),
]) if {
	is_object(input.Data)
	count(input.Data) > 0
} else := ""

paragraph("") := ""

paragraph(s) := sprintf("<p>%s</p>\n", [html.escape(s)]) if s != ""

rows := [
	["Severity", html.colored(severity_color, tracee.severity_text)],
	["MITRE ATT&CK", mitre],
	["Category", html.escape(tracee.category)],
	["Host", html.escape(tracee.host)],
	["Container", html.escape(tracee.container_text)],
	["Pod", html.escape(pod)],
	["Process", html.escape(tracee.process_text)],
	["Event", html.escape(tracee.event)],
	["Time", html.escape(tracee.time_text)],
]

# Tracee's info is shown like a negligible vulnerability.
severity_color := "negligible" if {
	tracee.severity == "info"
} else := tracee.severity

mitre := html.link(tracee.mitre_link, technique_text) if {
	tracee.mitre != ""
} else := ""

technique_text := sprintf("%s (%s)", [tracee.mitre, tracee.technique_id]) if {
	tracee.technique_id != ""
} else := tracee.mitre

pod := concat("/", [tracee.namespace, tracee.pod]) if {
	tracee.namespace != ""
	tracee.pod != ""
} else := tracee.pod

arguments := "" if {
	count(tracee.args) == 0
} else := concat("", [
	"<h4>Arguments</h4>\n",
	html.table(["Name", "Value"], [[html.escape(a.name), html.escape(a.value)] | some a in tracee.args]),
])

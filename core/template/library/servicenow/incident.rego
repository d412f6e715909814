# A runtime incident as a ServiceNow incident: Tracee findings and Aqua
# runtime incidents (name, category, severity, severity_score, host,
# container, image, podname, data, response_policy_name, time,
# application_scope, application_scope_owners). result is an object with
# the fields of the incident table:
#
#   short_description  the finding's title (160 characters)
#   description        plain text: what was detected, severity, where
#   work_notes         the details as HTML, in [code] tags
#   category           "Security incident"
#   subcategory        the finding's category (e.g. "defense-evasion")
#   impact, urgency    1 for critical and high, 2 for medium, 3 otherwise
#   opened_at          when it happened, "YYYY-MM-DD hh:mm:ss" UTC
#   assigned_to        the owner of the Aqua application scope, when one
#   assignment_group   the Aqua application scope, when one
#
# (fields without a value are left out). The message fields carry the same
# for actions that read them: date (Unix seconds), severity (1 to 3),
# summary, category, subcategory, assignedTo, assignedGroup, url (MITRE
# ATT&CK technique of a Tracee finding).
package postee.servicenow.incident

import data.postee.lib.html
import data.postee.lib.servicenow
import data.postee.lib.tracee
import data.postee.lib.util
import data.postee.tracee.html as tracee_report

# kind is "tracee" or "aqua"; undefined for other input.
kind := "tracee" if {
	tracee.is_finding
} else := "aqua" if {
	is_string(input.name)
}

title := servicenow.short_description(tracee.title) if kind == "tracee"

title := servicenow.short_description(input.name) if kind == "aqua"

url := tracee.mitre_link if {
	kind == "tracee"
	tracee.mitre_link != ""
}

# severity_name is critical, high, medium, low or info ("unknown" when the
# event does not say).
severity_name := tracee.severity if kind == "tracee"

severity_name := aqua_severity if kind == "aqua"

aqua_severity := lower(input.severity) if {
	is_string(input.severity)
	input.severity != ""
} else := tracee.severity_names[min([max([0, round(input.severity_score)]), 4])] if {
	is_number(input.severity_score)
} else := "unknown"

severity := servicenow.level(severity_name)

date := servicenow.seconds(tracee.time_ns) if kind == "tracee"

date := input.time if {
	kind == "aqua"
	is_number(input.time)
}

category := "Security incident"

subcategory := tracee.category if kind == "tracee"

subcategory := util.first(input, ["category"]) if kind == "aqua"

assignedTo := servicenow.assigned_to

assignedGroup := servicenow.assignment_group

summary := concat("\n", [sprintf("%s: %s", [name, value]) | some [name, value] in facts; value != ""])

# facts are the incident's [name, value] pairs, as text.
facts := [
	["Detected", tracee.name],
	["Signature", tracee.id],
	["Severity", tracee.severity_text],
	["MITRE ATT&CK", tracee.mitre],
	["Host", tracee.host],
	["Container", tracee.container_text],
	["Process", tracee.process_text],
	["Time", tracee.time_text],
] if kind == "tracee"

facts := [
	["Detected", input.name],
	["Category", util.first(input, ["category"])],
	["Severity", severity_name],
	["Host", util.first(input, ["hostname", "host"])],
	["Container", util.first(input, ["container", "containerid"])],
	["Image", util.first(input, ["image"])],
	["Pod", util.join_nonempty("/", [util.first(input, ["podnamespace"]), util.first(input, ["podname"])])],
	["Action", util.first(input, ["action"])],
	["Response policy", util.first(input, ["response_policy_name"])],
	["Application scope", servicenow.assignment_group],
] if kind == "aqua"

details := tracee_report.result if kind == "tracee"

details := concat("", [
	html.table(["Field", "Value"], [[html.escape(name), html.escape(value)] | some [name, value] in facts; value != ""]),
	data_table,
]) if kind == "aqua"

# data_table shows the incident's data (a JSON object in a string) as a
# table, or as text when it is not JSON.
data_table := concat("", ["<h4>Data</h4>\n", html.table(["Key", "Value"], [[html.escape(k), html.escape(util.text(v))] | some k, v in parsed])]) if {
	is_string(input.data)
	json.is_valid(input.data)
	parsed := json.unmarshal(input.data)
	is_object(parsed)
} else := sprintf("<h4>Data</h4>\n<pre>%s</pre>\n", [html.text(input.data)]) if {
	input.data
} else := ""

result := servicenow.record({
	"short_description": title,
	"description": summary,
	"work_notes": servicenow.work_notes(details),
	"category": category,
	"subcategory": object.get({"s": s | s := subcategory}, "s", ""),
	"impact": severity,
	"urgency": severity,
	"opened_at": object.get({"t": servicenow.opened_at(date * 1000000000) | date}, "t", ""),
	"assigned_to": assignedTo,
	"assignment_group": assignedGroup,
})

# An Aqua risk insight as a ServiceNow incident. The input has insight {id,
# description, impact, priority (0 to 4)}, resource {id, name, arn, type,
# found_date, last_scanned, steps}, evidence {vulnerabilities[] {name,
# severity, package_name, current_version, fix_version}, sensitive_data[]
# {file_type, file_path, image}}, response_policy_name, application_scope
# and application_scope_owners. result is an object with the fields of the
# incident table:
#
#   short_description  the insight's description (160 characters)
#   description        plain text: insight, impact, priority, resource
#   work_notes         the details and evidence as HTML, in [code] tags
#   category           "Security insight"
#   subcategory        the resource type
#   impact, urgency    1 for critical and high priority, 2 for medium, 3
#                      otherwise
#   assigned_to        the owner of the Aqua application scope, when one
#   assignment_group   the Aqua application scope, when one
#
# (fields without a value are left out). The message fields carry the same
# for actions that read them: severity (1 to 3), summary, category,
# subcategory, assignedTo, assignedGroup, url (the insight in the Aqua
# console, with aqua-server set).
package postee.servicenow.insight

import data.postee.lib.html
import data.postee.lib.links
import data.postee.lib.servicenow
import data.postee.lib.util

insight := object.get(input, "insight", {})

resource := object.get(input, "resource", {})

title := servicenow.short_description(insight.description) if is_string(insight.description)

# priority is the insight's priority as a severity name.
priority := ["negligible", "low", "medium", "high", "critical"][insight.priority] if {
	insight.priority in numbers.range(0, 4)
} else := "unknown"

severity := servicenow.level(priority)

category := "Security insight"

subcategory := util.first(resource, ["type"])

assignedTo := servicenow.assigned_to

assignedGroup := servicenow.assignment_group

# url is the insight on the resource in the Aqua console.
url := sprintf("%s/ah/#/insights/%s/resource/%s", [server, urlquery.encode(util.text(insight.id)), urlquery.encode(util.text(resource.id))]) if {
	server != ""
	insight.id
	resource.id
}

server := trim_suffix(object.get(input, ["postee", "AquaServer"], ""), "/#/images/")

facts := [
	["Insight", util.text(object.get(insight, "id", ""))],
	["Description", util.first(insight, ["description"])],
	["Impact", util.first(insight, ["impact"])],
	["Priority", priority],
	["Resource", util.first(resource, ["name"])],
	["Resource ID", util.text(object.get(resource, "id", ""))],
	["ARN", util.first(resource, ["arn"])],
	["Found", util.first(resource, ["found_date"])],
	["Last scanned", util.first(resource, ["last_scanned"])],
	["Attack path", util.first(resource, ["steps"])],
	["Response policy", util.first(input, ["response_policy_name"])],
]

summary := concat("\n", [sprintf("%s: %s", [name, value]) | some [name, value] in facts; value != ""])

evidence := object.get(input, "evidence", {})

details := concat("", [
	html.table(["Field", "Value"], [[html.escape(name), html.escape(value)] | some [name, value] in facts; value != ""]),
	vulnerabilities,
	sensitive_data,
	link,
])

vulnerabilities := concat("", [
	"<h4>Vulnerabilities</h4>\n",
	html.table(["Vulnerability", "Severity", "Package", "Installed version", "Fixed version"], [[
		html.link(links.vulnerability(util.text(v.name), ""), util.text(v.name)),
		html.severity(lower(util.first(v, ["severity"]))),
		html.escape(util.first(v, ["package_name"])),
		html.escape(util.first(v, ["current_version"])),
		html.escape(util.otherwise(util.first(v, ["fix_version"]), "none")),
	] |
		some v in evidence.vulnerabilities
		is_object(v)
	]),
]) if {
	count(evidence.vulnerabilities) > 0
} else := ""

sensitive_data := concat("", [
	"<h4>Sensitive data</h4>\n",
	html.table(["File type", "File path", "Image"], [[
		html.escape(util.first(d, ["file_type"])),
		html.escape(util.first(d, ["file_path"])),
		html.escape(util.first(d, ["image"])),
	] |
		some d in evidence.sensitive_data
		is_object(d)
	]),
]) if {
	count(evidence.sensitive_data) > 0
} else := ""

link := sprintf("<p>See more: %s</p>\n", [html.link(url, url)]) if {
	url
} else := ""

result := servicenow.record({
	"short_description": title,
	"description": summary,
	"work_notes": servicenow.work_notes(details),
	"category": category,
	"subcategory": subcategory,
	"impact": severity,
	"urgency": severity,
	"assigned_to": assignedTo,
	"assignment_group": assignedGroup,
})

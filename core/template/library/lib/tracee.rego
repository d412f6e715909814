# The Tracee finding in the input, in one shape for the templates (import
# data.postee.lib.tracee). A finding has SigMetadata {ID, Name, Description,
# Properties {Severity (0 to 4), "MITRE ATT&CK", Category, Technique,
# external_id}} and Context {hostName, containerId, containerImage,
# podName, processName, pid, hostProcessId, eventName, timestamp (ns),
# args}.
package postee.lib.tracee

import data.postee.lib.links
import data.postee.lib.util

# is_finding holds when the input is a Tracee finding.
is_finding if is_object(input.SigMetadata)

sig := object.get(input, "SigMetadata", {})

properties := object.get(sig, "Properties", {})

context := object.get(input, "Context", {})

id := util.first(sig, ["ID"])

name := util.first(sig, ["Name"]) if {
	util.first(sig, ["Name"]) != ""
} else := util.first(properties, ["signatureName"]) if {
	util.first(properties, ["signatureName"]) != ""
} else := id

description := util.first(sig, ["Description"]) if {
	util.first(sig, ["Description"]) != ""
} else := util.first(properties, ["signatureDescription"])

# severity_score is Tracee's severity, 0 (info) to 4 (critical); undefined
# when the finding has none.
severity_score := properties.Severity if is_number(properties.Severity)

# severity is the severity as a name: info, low, medium, high or critical;
# "unknown" when the finding has none.
severity := severity_names[min([max([0, round(severity_score)]), 4])] if {
	is_number(severity_score)
} else := "unknown"

severity_names := ["info", "low", "medium", "high", "critical"]

# severity_text is e.g. "high (3)".
severity_text := sprintf("%s (%v)", [severity, severity_score]) if {
	is_number(severity_score)
} else := severity

# mitre is the MITRE ATT&CK tactic and technique, e.g. "Execution: Command
# and Scripting Interpreter"; "" when unknown.
mitre := util.first(properties, ["MITRE ATT&CK"])

# tactic is the tactic part of mitre, e.g. "Execution".
tactic := trim_space(split(mitre, ":")[0])

technique := util.first(properties, ["Technique"])

technique_id := util.first(properties, ["external_id"])

# mitre_link is the MITRE ATT&CK page of the technique, "" when unknown.
mitre_link := links.mitre(technique_id)

# category is the finding's category: its Category property, else the
# MITRE tactic in lower case with dashes (e.g. "defense-evasion").
category := util.first(properties, ["Category"]) if {
	util.first(properties, ["Category"]) != ""
} else := replace(lower(tactic), " ", "-")

host := util.first(context, ["hostName"])

container_id := util.first(context, ["containerId", ["container", "id"]])

# container_short is the first 12 characters of the container id, as
# docker shows it.
container_short := substring(container_id, 0, 12)

container_image := util.first(context, ["containerImage", ["container", "image"]])

pod := util.first(context, ["podName", ["kubernetes", "podName"]])

namespace := util.first(context, ["podNamespace", ["kubernetes", "podNamespace"]])

process := util.first(context, ["processName"])

pid := util.text(object.get(context, "pid", object.get(context, "processId", null)))

host_pid := util.text(object.get(context, "hostProcessId", null))

# process_text is e.g. "sh (pid 4712, host pid 98312)".
process_text := sprintf("%s (%s)", [process, util.join_nonempty(", ", [pid_text, host_pid_text])]) if {
	pid_text != ""
} else := process

pid_text := sprintf("pid %s", [pid]) if {
	pid != ""
} else := ""

host_pid_text := sprintf("host pid %s", [host_pid]) if {
	host_pid != ""
	host_pid != pid
} else := ""

# container_text is e.g. "7f3e8c1d2b4a (registry.example.com/web:1.4.2)";
# "" outside containers.
container_text := util.join_nonempty(" ", [container_short, image_suffix]) if container_id != ""

default container_text := ""

image_suffix := sprintf("(%s)", [container_image]) if {
	container_image != ""
} else := ""

event := util.first(context, ["eventName"])

# time_ns is when the event happened, in nanoseconds since the epoch.
time_ns := context.timestamp if is_number(context.timestamp)

# time_text is time_ns as RFC 3339 (UTC), "" when unknown.
time_text := time.format(time_ns) if {
	is_number(time_ns)
} else := ""

# args are the event's arguments as {name, value} strings.
args := [{"name": util.text(a.name), "value": util.text(a.value)} |
	some a in object.get(context, "args", [])
	is_object(a)
]

# title is the message title of a finding; undefined for other input.
title := sprintf("Tracee: %s (%s) on %s", [name, id, host]) if {
	is_finding
	host != ""
} else := sprintf("Tracee: %s (%s)", [name, id]) if is_finding

# A Tracee finding as a Slack message: Block Kit blocks with the title, the
# signature's description, and fields for its severity, MITRE ATT&CK
# technique (linked), host, container, pod, process and event.
#
# result is the array of blocks (postee sends it as JSON); event text in it
# is escaped for mrkdwn.
package postee.tracee.slack

import data.postee.lib.slack
import data.postee.lib.tracee
import data.postee.lib.util

title := tracee.title

url := tracee.mitre_link if tracee.mitre_link != ""

severity := tracee.severity

category := tracee.category if tracee.category != ""

result := [b |
	some b in [
		slack.header(title),
		slack.section(sprintf("*%s: %s*\n%s", [slack.escape(tracee.id), slack.escape(tracee.name), slack.escape(tracee.description)])),
		slack.fields(fields),
		slack.context(util.join_nonempty(" · ", ["Tracee", tracee.time_text])),
	]
]

fields := array.concat(
	slack.labels([["Severity", tracee.severity_text]]),
	array.concat(
		[sprintf("*MITRE ATT&amp;CK:* %s", [slack.link(tracee.mitre_link, technique_text)]) | tracee.mitre != ""],
		slack.labels([
			["Host", tracee.host],
			["Container", tracee.container_text],
			["Pod", pod],
			["Process", tracee.process_text],
			["Event", tracee.event],
		]),
	),
)

technique_text := sprintf("%s (%s)", [tracee.mitre, tracee.technique_id]) if {
	tracee.technique_id != ""
} else := tracee.mitre

pod := concat("/", [tracee.namespace, tracee.pod]) if {
	tracee.namespace != ""
	tracee.pod != ""
} else := tracee.pod

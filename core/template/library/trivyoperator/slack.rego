# A Trivy Operator VulnerabilityReport as a Slack message: Block Kit blocks
# with the title, the image, registry and Kubernetes workload, the counts
# by severity and one line per vulnerability (the most severe first,
# linked to its advisory).
#
# result is the array of blocks (postee sends it as JSON); event text in it
# is escaped for mrkdwn.
package postee.trivyoperator.slack

import data.postee.lib.vuls
import data.postee.lib.vulsslack

title := sprintf("%s vulnerability scan report (%s)", [vuls.artifact, vuls.workload_ref]) if {
	vuls.workload_ref != ""
} else := vuls.title

severity := vuls.top_severity

result := array.concat(vulsslack.head, vulsslack.body_of(vulsslack.first_lines, count(vuls.vulnerabilities)))

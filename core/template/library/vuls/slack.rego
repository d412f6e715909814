# An image scan report as a Slack message: Block Kit blocks with the title,
# the image facts, the counts by severity and one line per vulnerability
# (the most severe first, linked to its advisory). Reads Aqua scans (the
# original's input), Trivy reports and Trivy Operator VulnerabilityReports
# (see postee.lib.vuls).
#
# result is the array of blocks (postee sends it as JSON); event text in it
# is escaped for mrkdwn. url is the image's page in the Aqua console (Aqua
# scans, with aqua-server set). Aggregated messages are combined by
# postee.vuls.slack.aggregation.
package postee.vuls.slack

import data.postee.lib.vuls
import data.postee.lib.vulsslack

title := vuls.title

url := vuls.url

severity := vuls.top_severity

aggregation_pkg := "postee.vuls.slack.aggregation"

result := array.concat(vulsslack.head, vulsslack.body_of(vulsslack.first_lines, count(vuls.vulnerabilities)))

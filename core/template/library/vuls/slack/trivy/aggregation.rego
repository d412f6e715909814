# Combines aggregated Slack messages of postee.vuls.trivy.slack (or any
# template whose result is an array of blocks) into one array of blocks, as
# postee.vuls.slack.aggregation does.
#
# Input: a list of {"title", "description"} (see Renderer.Aggregate).
package postee.vuls.slack.trivy.aggregation

import data.postee.lib.slackaggregation

title := slackaggregation.title

result := slackaggregation.blocks

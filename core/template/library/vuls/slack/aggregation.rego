# Combines aggregated Slack messages (of postee.vuls.slack or any template
# whose result is an array of blocks) into one array of blocks, with a
# divider between messages. A description that is not an array of blocks
# becomes a section with its text (escaped).
#
# Slack takes at most 50 blocks per message: every message keeps its first
# blocks within an equal share of that budget, and a context block says
# when blocks were left out.
#
# Input: a list of {"title", "description"} (see Renderer.Aggregate).
package postee.vuls.slack.aggregation

import data.postee.lib.slackaggregation

title := slackaggregation.title

result := slackaggregation.blocks

# Aggregation of Slack messages for the bundled aggregation packages
# (import data.postee.lib.slackaggregation). The input is a list of
# {"title", "description"}; a description that is an array is taken as
# the message's blocks.
package postee.lib.slackaggregation

import data.postee.lib.slack
import data.postee.lib.util

title := sprintf("Vulnerability scan report (%s)", [util.plural(count(input), "image")])

# share is how many blocks each message may keep: the budget (50 blocks,
# less a divider between messages and a footer) divided equally, at least
# 1.
share := max([1, floor(((slack.max_blocks - 1) - (count(input) - 1)) / max([1, count(input)]))])

item_blocks := [b |
	some m in input
	b := blocks_of(object.get(m, "description", ""), object.get(m, "title", ""))
]

blocks_of(d, _) := [b | some b in d; is_object(b)] if is_array(d)

blocks_of(d, t) := [slack.section(concat("\n", [sprintf("*%s*", [slack.escape(util.text(t))]), slack.escape(util.text(d))]))] if not is_array(d)

kept := [array.slice(bs, 0, share) | some bs in item_blocks]

left_out := sum([n | some i, bs in item_blocks; n := count(bs) - count(kept[i])])

joined := [b |
	some i, k in kept
	some b in array.concat([slack.divider | i > 0], k)
]

blocks := array.concat(
	array.slice(joined, 0, slack.max_blocks - 1),
	[slack.context(sprintf("%s left out to fit in one Slack message.", [util.plural(left_out + overflow, "block")])) | left_out + overflow > 0],
)

overflow := max([0, count(joined) - (slack.max_blocks - 1)])

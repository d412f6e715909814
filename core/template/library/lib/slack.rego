# Helpers for templates that write Slack messages (Block Kit), for the
# bundled templates and user templates (import data.postee.lib.slack). A
# template's result is the array of blocks; postee sends it as JSON.
package postee.lib.slack

import data.postee.lib.links
import data.postee.lib.util

# Slack's limits: blocks per message, characters of a section text, of a
# field and of a header.
max_blocks := 50

max_text := 3000

max_field := 2000

max_header := 150

# escape(s) escapes the characters of Slack's mrkdwn control sequences
# (& < >), so that event text cannot form links or mentions.
escape(s) := strings.replace_n({"&": "&amp;", "<": "&lt;", ">": "&gt;"}, s)

# link(url, label) is a mrkdwn link, or the escaped label when url is not
# an http(s) URL Slack can link.
link(url, label) := concat("", ["<", u, "|", escape(label), ">"]) if {
	u := links.safe(url)
	u != ""
	not regex.match(`[|<> ]`, u)
} else := escape(label)

# header(text) is a header block (plain text, no escaping needed).
header(text) := {"type": "header", "text": {"type": "plain_text", "text": util.truncate(util.one_line(text), max_header), "emoji": true}}

# section(text) is a section block of mrkdwn text.
section(text) := {"type": "section", "text": {"type": "mrkdwn", "text": util.truncate(text, max_text)}}

# fields(texts) is a section block of up to 10 mrkdwn fields.
fields(texts) := {"type": "section", "fields": [{"type": "mrkdwn", "text": util.truncate(t, max_field)} | some t in array.slice(texts, 0, 10)]}

# context(text) is a context block of mrkdwn text.
context(text) := {"type": "context", "elements": [{"type": "mrkdwn", "text": util.truncate(text, max_text)}]}

divider := {"type": "divider"}

# sections(lines, per) is the lines in section blocks of per lines each
# (keep lines short enough for per of them to fit in max_text).
sections(lines, per) := [section(concat("\n", array.slice(lines, i, i + per))) |
	some i in numbers.range_step(0, count(lines) - 1, per)
] if {
	count(lines) > 0
} else := []

# label(name, value) is "*name:* value" with value escaped.
label(name, value) := concat("", ["*", name, ":* ", escape(value)])

# labels(pairs) are the labels of the [name, value] pairs whose value is not
# "".
labels(pairs) := [label(name, value) | some [name, value] in pairs; value != ""]

# Helpers for templates that write Jira wiki markup, for the bundled
# templates and user templates (import data.postee.lib.jira).
package postee.lib.jira

import data.postee.lib.links

# escape(s) escapes the characters of Jira wiki markup that would change
# text or break a table (| [ ] { } * _ ^ ~ + ! # and backslash); line
# breaks become spaces.
escape(s) := strings.replace_n(
	{
		"\\": "\\\\", "|": "\\|", "[": "\\[", "]": "\\]", "{": "\\{", "}": "\\}", "*": "\\*",
		"_": "\\_", "^": "\\^", "~": "\\~", "+": "\\+", "!": "\\!", "#": "\\#",
		"\n": " ", "\r": " ",
	},
	s,
)

# cell(s) is s escaped for a table cell; an empty cell is a space, since
# "||" would start a header cell.
cell(s) := " " if {
	trim_space(s) == ""
} else := escape(s)

# link(url, label) is a link to url showing label, or the escaped label
# when url is not an http(s) URL.
link(url, label) := concat("", ["[", escape(label), "|", link_url(u), "]"]) if {
	u := links.safe(url)
	u != ""
} else := cell(label)

# link_url(u) escapes the characters that would end a Jira link.
link_url(u) := strings.replace_n({"|": "%7C", "[": "%5B", "]": "%5D", " ": "%20", "{": "%7B", "}": "%7D", "<": "%3C", ">": "%3E", "\"": "%22"}, u)

# table(headers, rows) is a Jira table: headers are text (escaped here),
# rows are arrays of cells that are markup already (use cell or link).
table(headers, rows) := concat("", [
	"||", concat("||", [cell(h) | some h in headers]), "||\n",
	concat("", [concat("", ["|", concat("|", r), "|\n"]) | some r in rows]),
])

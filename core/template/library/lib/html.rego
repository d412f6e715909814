# Helpers for templates that write HTML. Compiled with every template, so
# user templates can import them too: import data.postee.lib.html
package postee.lib.html

import data.postee.lib.links

# escape(s) is s with the characters that are special in HTML (& < > " ')
# replaced by entities: safe in element content and in quoted attribute
# values. htmlescape is postee's builtin for this (the string builtins of
# OPA build a replacement table on every call).
escape(s) := htmlescape(s)

# text(x) is x as escaped HTML text: a string as it is, anything else as its
# JSON, indented.
text(x) := escape(x) if {
	is_string(x)
} else := escape(jsonformat(x))

# link(url, label) is a link to url showing label, both escaped; only the
# label when url is not an http(s) URL.
link(url, label) := concat("", [`<a href="`, escape(u), `">`, escape(label), "</a>"]) if {
	u := links.safe(url)
	u != ""
} else := escape(label)

# table(headers, rows) is a bordered table: headers are text (escaped here),
# rows are arrays of cells that are HTML already (escape their text with
# escape or link).
table(headers, rows) := table_of_rows(headers, [row(cells) | some cells in rows])

# table_of_rows(headers, rows) is the same table with rows that are whole
# rows already (as row(cells) writes them, "<tr><td>...</td></tr>\n"):
# long tables are cheaper written this way.
table_of_rows(headers, rows) := concat("", table_parts(headers, rows))

# table_parts(headers, rows) is table_of_rows(headers, rows) as the strings
# it is made of, to be concatenated with more: each concat copies all it
# joins, so a long message is cheaper joined once than table by table.
table_parts(headers, rows) := array.concat(array.concat([table_start(headers)], rows), [table_end])

# table_start(headers) opens a table and writes its header row; table_end
# closes it.
table_start(headers) := concat("", [
	`<table style="border-collapse: collapse;" border="1" cellpadding="4">`, "\n",
	`<tr><th style="text-align: left;">`, concat(`</th><th style="text-align: left;">`, [escape(h) | some h in headers]), "</th></tr>\n",
])

table_end := "</table>\n"

# row(cells) is a table row of cells that are HTML already. For rows of
# event text, postee's builtin htmlrow(cells, link) escapes each cell
# itself and makes the first a link to link when it is an http(s) URL (""
# for none): one call per row, the cheap way to write a long table.
row(cells) := concat("", ["<tr><td>", concat("</td><td>", cells), "</td></tr>\n"])

# field(label, value) is a paragraph "<b>label:</b> value" (both escaped),
# "" when value is "".
field(_, "") := ""

field(label, value) := sprintf("<p><b>%s:</b> %s</p>\n", [escape(label), escape(value)]) if value != ""

# severity(s) is a severity name in its color, bold.
severity(s) := colored(s, s)

# colored(s, x) is x (escaped text) in the color of severity s, bold.
colored(s, x) := concat("", [`<span style="color: `, colors[s], `; font-weight: bold;">`, text(x), "</span>"]) if {
	colors[s]
} else := text(x)

colors := {
	"critical": "#c00000",
	"high": "#e0443d",
	"medium": "#f79421",
	"low": "#b8a000",
	"negligible": "#548235",
	"info": "#548235",
	"unknown": "#7f7f7f",
}

# The event as it was received, as an HTML table: one row per top-level key,
# in key order. Strings are shown as text, numbers, booleans and null as
# JSON, objects and arrays as indented JSON in a <pre> block. Every key and
# value is HTML-escaped.
package postee.rawmessage.html

import data.postee.lib.html

title := "-"

# postee adds input.postee for templates; it is not part of the event.
event := object.remove(input, {"postee"})

result := concat("", ["<table>\n", concat("", rows), "</table>\n"])

rows := [sprintf("<tr><th>%s</th><td>%s</td></tr>\n", [html.escape(key), cell(event[key])]) |
	some key in sort(object.keys(event))
]

cell(value) := html.escape(value) if {
	is_string(value)
} else := sprintf("<pre>%s</pre>", [html.escape(jsonformat(value))]) if {
	type_name(value) in {"object", "array", "set"}
} else := jsonformat(value)

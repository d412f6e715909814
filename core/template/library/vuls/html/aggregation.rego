# Combines aggregated HTML messages (of postee.vuls.html or any template)
# into one: each message's title as a heading, then its description. A
# description that is JSON is shown as indented JSON.
#
# Input: a list of {"title", "description"} (see Renderer.Aggregate).
package postee.vuls.html.aggregation

import data.postee.lib.html
import data.postee.lib.util

title := sprintf("Vulnerability scan report (%s)", [util.plural(count(input), "image")])

result := concat("", [item(m) | some m in input])

item(m) := concat("", [
	"<h1>", html.escape(util.text(object.get(m, "title", ""))), "</h1>\n",
	body(object.get(m, "description", "")),
])

# An HTML description is used as it is: it is the output of a template,
# which escaped the event's text.
body(d) := d if {
	is_string(d)
} else := sprintf("<pre>%s</pre>\n", [html.escape(jsonformat(d))])

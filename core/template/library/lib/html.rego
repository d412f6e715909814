# Helpers for templates that write HTML. Compiled with every template, so
# user templates can import them too: import data.postee.lib.html
package postee.lib.html

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

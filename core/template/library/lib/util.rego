# Small helpers on values and text, for the bundled templates and for user
# templates (import data.postee.lib.util).
package postee.lib.util

# first(obj, keys) is the first non-empty string among the values of keys
# (each a key or an array of keys, a path) in obj; "" when there is none or
# obj is not an object.
first(obj, keys) := found[0] if {
	found := [v |
		some k in keys
		v := object.get(obj, k, "")
		is_string(v)
		v != ""
	]
	count(found) > 0
} else := ""

# str(obj, key) is the string at key in obj, "" when there is none.
str(obj, key) := s if {
	s := obj[key]
	is_string(s)
} else := ""

# otherwise(s, fallback) is s, or fallback when s is "".
otherwise(s, fallback) := s if s != ""

otherwise("", fallback) := fallback

# text(x) is x as text: a string as it is, null as "", anything else as
# compact JSON (numbers as written).
text(x) := x if {
	is_string(x)
} else := "" if {
	is_null(x)
} else := json.marshal(x)

# truncate(s, n) is s when it has at most n characters, else its first n-1
# characters and "…".
truncate(s, n) := s if {
	count(s) <= n
} else := concat("", [substring(s, 0, n - 1), "…"])

# one_line(s) is s with line breaks and tabs replaced by spaces.
one_line(s) := strings.replace_n({"\n": " ", "\r": " ", "\t": " "}, s)

# join_nonempty(sep, list) joins the non-empty strings of list with sep.
join_nonempty(sep, list) := concat(sep, [s | some s in list; s != ""])

# plural(n, word) is "1 word" or "n words".
plural(1, word) := concat("", ["1 ", word])

plural(n, word) := sprintf("%d %ss", [n, word]) if n != 1

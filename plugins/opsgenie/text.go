package main

import "strings"

// truncate cuts s to at most max characters, ending with "…" when cut.
// Characters are counted as UTF-16 units, as Opsgenie (a Java service)
// counts them: a character outside the Basic Multilingual Plane, an emoji,
// counts twice.
func truncate(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if length(s) <= max {
		return s
	}
	if max <= 0 {
		return ""
	}
	budget := max - 1 // room for the ellipsis
	used := 0
	for i, r := range s {
		if used+units(r) > budget {
			return strings.TrimRight(s[:i], " \t\r\n") + "…"
		}
		used += units(r)
	}
	return s
}

// length is the length of s in UTF-16 units.
func length(s string) int {
	n := 0
	for _, r := range s {
		n += units(r)
	}
	return n
}

func units(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// built is a message turned into request bodies.
type built struct {
	bodies [][]byte
	// omitted counts the parts over max-parts that were not sent.
	omitted int
}

// noteReserve is the room kept in the last part for the note that says
// parts were left out.
const noteReserve = 600

// marshal encodes v as JSON without HTML escaping (Teams gets HTML as
// text: "\u003c" for every "<" would triple its size for nothing).
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only types of this package are encoded: they always encode.
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// jsonSize is the size of v as JSON.
func jsonSize(v any) int { return len(marshal(v)) }

// jsonLen is the length of s inside a JSON string, quotes excluded, as
// marshal writes it.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			case c < 0x20:
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// splitText cuts s into pieces of at most limit JSON bytes each: after
// line ends where it can, else after spaces, else between runes (never
// inside an HTML character reference when entities is set, never after
// an escaping backslash).
func splitText(s string, limit int, entities bool) []string {
	if limit < 16 {
		limit = 16
	}
	var out []string
	for jsonLen(s) > limit {
		cut := cutPoint(s, limit, entities)
		out = append(out, s[:cut])
		s = s[cut:]
	}
	if s != "" || len(out) == 0 {
		out = append(out, s)
	}
	return out
}

// cutPoint returns where to cut s so that s[:cut] is at most limit JSON
// bytes; cut > 0.
func cutPoint(s string, limit int, entities bool) int {
	// The longest prefix within the limit.
	n, max := 0, 0
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		w := jsonLen(s[i : i+size])
		if n+w > limit {
			break
		}
		n += w
		i += size
		max = i
	}
	if max == 0 {
		_, size := utf8.DecodeRuneInString(s)
		return size
	}
	head := s[:max]
	// Prefer a line end, then a space, in the second half of the piece.
	if i := strings.LastIndexByte(head, '\n'); i >= max/2 {
		return i + 1
	}
	if i := strings.LastIndexAny(head, " \t"); i >= max/2 {
		return i + 1
	}
	cut := max
	if entities {
		if amp := strings.LastIndexByte(head, '&'); amp >= 0 && !strings.Contains(head[amp:], ";") && amp > 0 {
			cut = amp
		}
	}
	// Keep a backslash with the character it escapes.
	back := 0
	for back < cut && s[cut-back-1] == '\\' {
		back++
	}
	if back%2 == 1 && cut > 1 {
		cut--
	}
	return cut
}

// isHTML reports whether s holds at least one HTML element tag (a text
// with "a < b" or "<none>" is not HTML).
func isHTML(s string) bool {
	if !strings.Contains(s, "<") {
		return false
	}
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return false
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			if atom.Lookup(name) != 0 {
				return true
			}
		}
	}
}

// isJSON reports whether s is a JSON object or array (the rawmessage.json
// template's output, for instance).
func isJSON(s string) bool {
	t := strings.TrimSpace(s)
	return (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) && json.Valid([]byte(t))
}

// oneLine replaces line breaks and tabs with spaces and cuts s to at most
// max bytes (on a rune boundary, with "…").
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= max {
		return s
	}
	n := max - len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

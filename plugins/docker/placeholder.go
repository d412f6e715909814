package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// placeholderPrefix starts a placeholder in docker-cmd arguments.
const placeholderPrefix = "event.input."

// template is a value parsed once into literal text and placeholders.
type template struct {
	src   string
	parts []part
	// placeholders is whether any part is a placeholder.
	placeholders bool
}

// part is literal text, or (path non-nil) a placeholder for the value at
// path in the event.
type part struct {
	literal string
	path    []string
}

// parseTemplate splits s into literals and placeholders. A placeholder is
// `event.input.` followed by a key, then any number of `.key` or `[index]`;
// keys are letters, digits, '_' and '-'. Anything else is literal text.
func parseTemplate(s string) template {
	t := template{src: s}
	lit := 0 // start of the literal not yet added
	for i := 0; ; {
		j := strings.Index(s[i:], placeholderPrefix)
		if j < 0 {
			break
		}
		start := i + j
		path, end := parsePath(s, start+len(placeholderPrefix))
		if path == nil {
			i = start + 1
			continue
		}
		if start > lit {
			t.parts = append(t.parts, part{literal: s[lit:start]})
		}
		t.parts = append(t.parts, part{path: path})
		t.placeholders = true
		lit, i = end, end
	}
	if lit < len(s) {
		t.parts = append(t.parts, part{literal: s[lit:]})
	}
	return t
}

// parsePath reads a path starting at s[pos] and returns it with the offset
// just past it; nil when no key starts at pos.
func parsePath(s string, pos int) ([]string, int) {
	n := keyLen(s[pos:])
	if n == 0 {
		return nil, pos
	}
	path := []string{s[pos : pos+n]}
	pos += n
	for pos < len(s) {
		switch s[pos] {
		case '.':
			if n := keyLen(s[pos+1:]); n > 0 {
				path = append(path, s[pos+1:pos+1+n])
				pos += 1 + n
				continue
			}
		case '[':
			if n := digitLen(s[pos+1:]); n > 0 && pos+1+n < len(s) && s[pos+1+n] == ']' {
				path = append(path, s[pos+1:pos+1+n])
				pos += n + 2
				continue
			}
		}
		break
	}
	return path, pos
}

func keyLen(s string) int {
	n := 0
	for n < len(s) {
		c := s[n]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			break
		}
		n++
	}
	return n
}

func digitLen(s string) int {
	n := 0
	for n < len(s) && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	return n
}

// render fills the placeholders from a decoded event. missing lists the
// placeholders (as written) the event has no value for; they become "".
func (t *template) render(event any) (out string, missing []string) {
	if !t.placeholders {
		return t.src, nil
	}
	var sb strings.Builder
	for _, p := range t.parts {
		if p.path == nil {
			sb.WriteString(p.literal)
			continue
		}
		v, ok := lookup(event, p.path)
		if !ok {
			missing = append(missing, placeholderPrefix+strings.Join(p.path, "."))
			continue
		}
		sb.WriteString(format(v))
	}
	return sb.String(), missing
}

// decodeEvent parses one JSON value, keeping numbers as written.
func decodeEvent(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("event is not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("event is not valid JSON: data after the top-level value")
	}
	return v, nil
}

// lookup walks path through v: a key of an object, or an index of an array.
// A JSON null at the end counts as missing.
func lookup(v any, path []string) (any, bool) {
	for _, seg := range path {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[seg]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, v != nil
}

// format writes a value as the placeholder's replacement: strings as they
// are, numbers as written, booleans as true/false, objects and arrays as
// compact JSON.
func format(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

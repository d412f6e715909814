package sdkevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Prefix starts a placeholder.
const Prefix = "event.input."

// Null says how a placeholder whose value in the event is JSON null is
// filled.
type Null int

const (
	// NullMissing treats null as a missing value: the placeholder becomes
	// "" and is reported missing.
	NullMissing Null = iota
	// NullText writes null as the text `null`.
	NullText
)

// Template is a value parsed once into literal text and placeholders. Its
// zero value is the empty text. A Template is safe for concurrent use.
type Template struct {
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

// Parse splits s into literals and placeholders. A placeholder is
// `event.input.` followed by a key, then any number of `.key` or `[index]`;
// keys are letters, digits, '_' and '-'. Anything else is literal text, so
// `event.input.image.` at the end of a sentence keeps its full stop.
func Parse(s string) Template {
	t := Template{src: s}
	lit := 0 // start of the literal not yet added
	for i := 0; ; {
		j := strings.Index(s[i:], Prefix)
		if j < 0 {
			break
		}
		start := i + j
		path, end := parsePath(s, start+len(Prefix))
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

// String returns the text as written.
func (t Template) String() string { return t.src }

// HasPlaceholders reports whether the text holds a placeholder, that is,
// whether rendering it needs the event.
func (t Template) HasPlaceholders() bool { return t.placeholders }

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

// Render fills the placeholders from an event decoded with Decode: strings
// as they are, numbers as written, booleans as true/false, objects and
// arrays as compact JSON (keys sorted), null as null says. missing lists
// the placeholders (as `event.input.a.b`) the event has no value for; they
// become "". Without placeholders it returns the text as written and does
// not look at event.
func (t Template) Render(event any, null Null) (out string, missing []string) {
	if !t.placeholders {
		return t.src, nil
	}
	var sb strings.Builder
	sb.Grow(len(t.src))
	for _, p := range t.parts {
		if p.path == nil {
			sb.WriteString(p.literal)
			continue
		}
		v, ok := lookup(event, p.path)
		if !ok || (v == nil && null == NullMissing) {
			missing = append(missing, Prefix+strings.Join(p.path, "."))
			continue
		}
		sb.WriteString(format(v))
	}
	return sb.String(), missing
}

// Execute renders the template on a raw JSON event, decoding the event only
// when there is a placeholder: without one, an event that is not JSON is no
// error.
func (t Template) Execute(event []byte, null Null) (out string, missing []string, err error) {
	if !t.placeholders {
		return t.src, nil, nil
	}
	v, err := Decode(event)
	if err != nil {
		return "", nil, err
	}
	out, missing = t.Render(v, null)
	return out, missing, nil
}

// Decode parses one JSON value for Render, keeping numbers as written.
func Decode(raw []byte) (any, error) {
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
// A JSON null found at the end is (nil, true).
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
	return v, true
}

// format writes a value as the placeholder's replacement.
func format(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

package template

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/sdk"
)

// rawJSONPackage is the bundled template that sends the event as received,
// as indented JSON (library/rawmessage/json.rego):
//
//	title := "-"
//	result := jsonformat(object.remove(input, {"postee"}))
//
// It is the most common template and its Rego is all overhead: the
// evaluation, and object.remove copying the whole event to drop the one key
// postee added. renderRawJSON writes the same bytes straight from the
// input (TestRawJSONMatchesRego checks them against the Rego).
const rawJSONPackage = "postee.rawmessage.json"

// renderRawJSON renders input as postee.rawmessage.json does. It declines
// (false) what it does not write exactly as jsonformat would: an input that
// is not an object, an object with keys that are not strings (neither comes
// from a JSON event), or a value JSON cannot hold; the Rego then renders it,
// errors included.
func renderRawJSON(input ast.Value) (sdk.Message, bool) {
	obj, ok := input.(ast.Object)
	if !ok {
		return sdk.Message{}, false
	}
	bp := jsonBuffers.Get().(*[]byte)
	b, ok := appendObjectWithout((*bp)[:0], obj, "postee")
	var msg sdk.Message
	if ok {
		msg = sdk.Message{Title: "-", Description: string(b)}
	}
	if cap(b) <= maxPooledBuffer {
		*bp = b[:0]
		jsonBuffers.Put(bp)
	}
	return msg, ok
}

// appendObjectWithout appends obj without its key skip, indented as
// jsonformat writes it; false when obj has a key that is not a string or a
// value that is not JSON.
func appendObjectWithout(buf []byte, obj ast.Object, skip string) ([]byte, bool) {
	w := jsonWriter{buf: buf, indent: true}
	start := len(buf)
	w.buf = append(w.buf, '{')
	n := 0
	mixed := false
	// Keys iterate sorted, as in jsonWriter.object.
	obj.Foreach(func(k, v *ast.Term) {
		if mixed || w.err != nil {
			return
		}
		key, ok := k.Value.(ast.String)
		if !ok {
			mixed = true
			return
		}
		if string(key) == skip {
			return
		}
		w.member(n, string(key), v.Value, 0)
		n++
	})
	if mixed || w.err != nil {
		return w.buf[:start], false
	}
	if n == 0 {
		return append(w.buf[:start], "{}"...), true
	}
	w.newline(0)
	return append(w.buf, '}'), true
}

// renderRawJSONBytes renders postee.rawmessage.json from the event as
// received, without parsing it into a value: the same bytes as
// renderRawJSON of the parsed event (TestRawJSONMatchesRego), at a
// fraction of the cost, for routes that read only a few of the event's
// fields. It declines (false) what is not one JSON object.
func renderRawJSONBytes(raw []byte) (sdk.Message, bool) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return sdk.Message{}, false
	}
	w := rawWriters.Get().(*rawWriter)
	w.data, w.pos = trimmed, 0
	w.buf, w.keys = w.buf[:0], w.keys[:0]
	err := w.value(0, "postee")
	var msg sdk.Message
	if err == nil {
		msg = sdk.Message{Title: "-", Description: string(w.buf)}
	}
	w.data = nil
	if cap(w.buf) <= maxPooledBuffer && cap(w.scratch) <= maxPooledBuffer && cap(w.keys) <= maxPooledBuffer {
		rawWriters.Put(w)
	}
	return msg, err == nil
}

var rawWriters = sync.Pool{New: func() any { return &rawWriter{jsonWriter: jsonWriter{indent: true}} }}

// rawWriter writes valid JSON as jsonformat writes its parsed value, in
// one pass over the bytes: object keys sorted (a repeated key's last value
// kept), strings re-escaped, numbers as written.
type rawWriter struct {
	jsonWriter
	data    []byte
	pos     int
	strs    event.StringReader
	scratch []byte
	// keys holds the decoded object keys that were escaped.
	keys []byte
	// members[depth] is reused by the objects at that depth.
	members [][]rawMember
}

// rawMember is an object member written to buf[start:end] (its newline,
// key and value), to be put in key order when the object ends. Its key is
// data[keyStart:keyEnd], or keys[keyStart:keyEnd] when escaped (decoded):
// offsets rather than a slice, so that sorting members moves no pointers
// (no write barriers while the collector runs); prefix is the key's first
// eight bytes, which order most pairs of keys without looking at them.
type rawMember struct {
	prefix           uint64
	keyStart, keyEnd int
	start, end       int
	escaped          bool
}

// keyPrefix is the first eight bytes of k, big-endian, zero-padded: for
// two keys, a < b when keyPrefix(a) < keyPrefix(b).
func keyPrefix(k []byte) uint64 {
	var p uint64
	for i := range 8 {
		p <<= 8
		if i < len(k) {
			p |= uint64(k[i])
		}
	}
	return p
}

// key is m's key, unescaped.
func (w *rawWriter) key(m *rawMember) []byte {
	if m.escaped {
		return w.keys[m.keyStart:m.keyEnd]
	}
	return w.data[m.keyStart:m.keyEnd]
}

// compare orders members by key, then by position (a repeated key's
// values in the order written).
func (w *rawWriter) compare(a, b *rawMember) int {
	if a.prefix != b.prefix {
		return cmp.Compare(a.prefix, b.prefix)
	}
	if c := bytes.Compare(w.key(a), w.key(b)); c != 0 {
		return c
	}
	return cmp.Compare(a.start, b.start)
}

// sort puts members in key order: an insertion sort for the few members
// most objects have.
func (w *rawWriter) sort(members []rawMember) {
	if len(members) > 16 {
		slices.SortFunc(members, func(a, b rawMember) int { return w.compare(&a, &b) })
		return
	}
	for i := 1; i < len(members); i++ {
		m := members[i]
		j := i
		for ; j > 0 && w.compare(&members[j-1], &m) > 0; j-- {
			members[j] = members[j-1]
		}
		members[j] = m
	}
}

// bytesString views b as a string without copying, for appendString,
// which does not keep it.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (w *rawWriter) space() {
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

func (w *rawWriter) value(depth int, skip string) error {
	w.space()
	if w.pos >= len(w.data) {
		return errors.New("unexpected end of JSON")
	}
	switch w.data[w.pos] {
	case '{':
		return w.object(depth, skip)
	case '[':
		return w.array(depth)
	case '"':
		if end := plainString(w.data, w.pos); end > 0 {
			w.buf = append(w.buf, w.data[w.pos:end]...)
			w.pos = end
			return nil
		}
		s, next, err := w.strs.Read(w.data, w.pos)
		if err != nil {
			return err
		}
		w.pos = next
		w.buf = appendString(w.buf, bytesString(s))
	default: // a number, true, false or null: written as it is
		start := w.pos
		for w.pos < len(w.data) {
			c := w.data[w.pos]
			if c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			w.pos++
		}
		if w.pos == start {
			return fmt.Errorf("invalid character %q at offset %d", w.data[w.pos], w.pos)
		}
		w.buf = append(w.buf, w.data[start:w.pos]...)
	}
	return nil
}

func (w *rawWriter) array(depth int) error {
	w.pos++ // [
	w.space()
	if w.pos < len(w.data) && w.data[w.pos] == ']' {
		w.pos++
		w.buf = append(w.buf, "[]"...)
		return nil
	}
	w.buf = append(w.buf, '[')
	for n := 0; ; n++ {
		if n > 0 {
			w.buf = append(w.buf, ',')
		}
		w.newline(depth + 1)
		if err := w.value(depth+1, ""); err != nil {
			return err
		}
		w.space()
		if w.pos >= len(w.data) {
			return errors.New("unexpected end of JSON")
		}
		c := w.data[w.pos]
		w.pos++
		switch c {
		case ',':
		case ']':
			w.newline(depth)
			w.buf = append(w.buf, ']')
			return nil
		default:
			return fmt.Errorf("invalid character %q after an array element", c)
		}
	}
}

func (w *rawWriter) object(depth int, skip string) error {
	w.pos++ // {
	base := len(w.buf)
	w.buf = append(w.buf, '{')
	for len(w.members) <= depth {
		w.members = append(w.members, nil)
	}
	members := w.members[depth][:0]
	for {
		w.space()
		if w.pos >= len(w.data) {
			return errors.New("unexpected end of JSON")
		}
		if w.data[w.pos] == '}' && len(members) == 0 {
			w.pos++
			break
		}
		if w.data[w.pos] != '"' {
			return fmt.Errorf("invalid character %q looking for an object key", w.data[w.pos])
		}
		m := rawMember{}
		if len(members) > 0 {
			w.buf = append(w.buf, ',') // left out again if the order changes
		}
		start := len(w.buf)
		w.newline(depth + 1)
		if end := plainString(w.data, w.pos); end > 0 {
			m.keyStart, m.keyEnd = w.pos+1, end-1
			m.prefix = keyPrefix(w.data[m.keyStart:m.keyEnd])
			w.buf = append(w.buf, w.data[w.pos:end]...)
			w.pos = end
		} else {
			kb, next, err := w.strs.Read(w.data, w.pos)
			if err != nil {
				return err
			}
			m.escaped, m.keyStart = true, len(w.keys)
			w.keys = append(w.keys, kb...)
			m.keyEnd = len(w.keys)
			m.prefix = keyPrefix(kb)
			w.buf = appendString(w.buf, bytesString(kb))
			w.pos = next
		}
		w.space()
		if w.pos >= len(w.data) || w.data[w.pos] != ':' {
			return errors.New("expected ':' after an object key")
		}
		w.pos++
		w.buf = append(w.buf, ':', ' ')
		if err := w.value(depth+1, ""); err != nil {
			return err
		}
		if depth == 0 && string(w.key(&m)) == skip {
			w.buf = w.buf[:start]
			if len(members) > 0 {
				w.buf = w.buf[:start-1] // its comma
			}
		} else {
			m.start, m.end = start, len(w.buf)
			members = append(members, m)
		}
		w.space()
		if w.pos >= len(w.data) {
			return errors.New("unexpected end of JSON")
		}
		c := w.data[w.pos]
		w.pos++
		if c == '}' {
			break
		}
		if c != ',' {
			return fmt.Errorf("invalid character %q after an object value", c)
		}
	}
	w.members[depth] = members
	if len(members) == 0 {
		w.buf = append(w.buf[:base], "{}"...)
		return nil
	}
	if w.sortedUnique(members) {
		// Written in order already (as many producers write them).
		w.newline(depth)
		w.buf = append(w.buf, '}')
		return nil
	}
	// The members in key order, each key once (its last value), joined
	// with commas: rewritten from a copy of what was written.
	w.sort(members)
	w.scratch = append(w.scratch[:0], w.buf[base:]...)
	w.buf = append(w.buf[:base], '{')
	n := 0
	for i, m := range members {
		if i+1 < len(members) && bytes.Equal(w.key(&members[i+1]), w.key(&m)) {
			continue // a later value of the same key wins
		}
		if n > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = append(w.buf, w.scratch[m.start-base:m.end-base]...)
		n++
	}
	w.newline(depth)
	w.buf = append(w.buf, '}')
	return nil
}

// plainString returns the end (after the closing quote) of the JSON string
// at data[pos] when it is written as appendString would write it (printable
// ASCII without escapes), else 0.
func plainString(data []byte, pos int) int {
	for i := pos + 1; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '"':
			return i + 1
		case c < 0x20 || c >= utf8.RuneSelf || c == '\\':
			return 0
		}
	}
	return 0
}

// sortedUnique reports whether the members' keys are in strictly
// increasing order.
func (w *rawWriter) sortedUnique(members []rawMember) bool {
	for i := 1; i < len(members); i++ {
		if w.compare(&members[i-1], &members[i]) >= 0 || bytes.Equal(w.key(&members[i-1]), w.key(&members[i])) {
			return false
		}
	}
	return true
}

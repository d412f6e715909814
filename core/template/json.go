package template

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// appendJSON appends v as JSON to buf, straight from the OPA value (no
// conversion to Go maps): object keys sorted, HTML characters not escaped,
// sets as sorted arrays. With indent, the layout is that of
// json.MarshalIndent(v, "", "  "); without, it is compact.
func appendJSON(buf []byte, v ast.Value, indent bool, depth int) ([]byte, error) {
	w := jsonWriter{buf: buf, indent: indent}
	err := w.value(v, depth)
	return w.buf, err
}

type jsonWriter struct {
	buf    []byte
	indent bool
	err    error
	// state of the object being written, for memberFn
	count, depth int
	memberFn     func(k, v *ast.Term)
}

func (w *jsonWriter) value(v ast.Value, depth int) error {
	switch x := v.(type) {
	case ast.Null:
		w.buf = append(w.buf, "null"...)
	case ast.Boolean:
		if x {
			w.buf = append(w.buf, "true"...)
		} else {
			w.buf = append(w.buf, "false"...)
		}
	case ast.Number:
		w.buf = append(w.buf, x...)
	case ast.String:
		w.buf = appendString(w.buf, string(x))
	case *ast.Array:
		n := x.Len()
		if n == 0 {
			w.buf = append(w.buf, "[]"...)
			return nil
		}
		w.buf = append(w.buf, '[')
		for i := range n {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.newline(depth + 1)
			if err := w.value(x.Elem(i).Value, depth+1); err != nil {
				return err
			}
		}
		w.newline(depth)
		w.buf = append(w.buf, ']')
	case ast.Set:
		return w.value(x.Sorted(), depth)
	case ast.Object:
		return w.object(x, depth)
	default:
		return fmt.Errorf("cannot convert %s to JSON", ast.ValueName(v))
	}
	return nil
}

// errMixedKeys stops the writing of an object with keys that are not all
// strings; mixedObject writes it instead.
var errMixedKeys = errors.New("object keys are not all strings")

func (w *jsonWriter) object(obj ast.Object, depth int) error {
	if obj.Len() == 0 {
		w.buf = append(w.buf, "{}"...)
		return nil
	}
	if w.memberFn == nil {
		// One closure for every object: Foreach takes a func.
		w.memberFn = func(k, v *ast.Term) {
			if w.err != nil {
				return
			}
			key, ok := k.Value.(ast.String)
			if !ok {
				w.err = errMixedKeys
				return
			}
			n, d := w.count, w.depth
			w.member(n, string(key), v.Value, d)
			w.count, w.depth = n+1, d
		}
	}
	start := len(w.buf)
	w.buf = append(w.buf, '{')
	// Keys iterate sorted; string keys sort as JSON keys do.
	w.count, w.depth = 0, depth
	obj.Foreach(w.memberFn)
	if w.err == errMixedKeys {
		w.err = nil
		w.buf = w.buf[:start]
		return w.mixedObject(obj, depth)
	}
	if w.err != nil {
		return w.err
	}
	w.newline(depth)
	w.buf = append(w.buf, '}')
	return nil
}

// mixedObject writes an object with keys that are not strings (possible in
// Rego, not in JSON): they become their JSON text, which needs a sort of
// its own.
func (w *jsonWriter) mixedObject(obj ast.Object, depth int) error {
	type kv struct {
		key string
		val ast.Value
	}
	pairs := make([]kv, 0, obj.Len())
	var err error
	obj.Foreach(func(k, v *ast.Term) {
		if key, ok := k.Value.(ast.String); ok {
			pairs = append(pairs, kv{string(key), v.Value})
			return
		}
		var kb []byte
		if kb, err = appendJSON(nil, k.Value, false, 0); err == nil {
			pairs = append(pairs, kv{string(kb), v.Value})
		}
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(pairs, func(a, b kv) int { return strings.Compare(a.key, b.key) })
	w.buf = append(w.buf, '{')
	for i, p := range pairs {
		if w.member(i, p.key, p.val, depth); w.err != nil {
			return w.err
		}
	}
	w.newline(depth)
	w.buf = append(w.buf, '}')
	return nil
}

func (w *jsonWriter) member(i int, key string, val ast.Value, depth int) {
	if i > 0 {
		w.buf = append(w.buf, ',')
	}
	w.newline(depth + 1)
	w.buf = appendString(w.buf, key)
	if w.indent {
		w.buf = append(w.buf, ':', ' ')
	} else {
		w.buf = append(w.buf, ':')
	}
	if err := w.value(val, depth+1); err != nil {
		w.err = err
	}
}

func (w *jsonWriter) newline(depth int) {
	if !w.indent {
		return
	}
	w.buf = append(w.buf, '\n')
	for range depth {
		w.buf = append(w.buf, ' ', ' ')
	}
}

// jsonBuffers recycles the buffers of jsonformat, which returns a copy.
var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// maxPooledBuffer keeps the pool from holding on to rare huge buffers.
const maxPooledBuffer = 1 << 20

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does with
// HTML escaping off: invalid UTF-8 becomes U+FFFD, and U+2028 and U+2029
// are escaped.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

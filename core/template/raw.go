package template

import (
	"github.com/open-policy-agent/opa/v1/ast"

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

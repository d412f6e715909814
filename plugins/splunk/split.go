package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/postee-dev/postee/sdk"
)

// partReserve is room kept in every part for the postee_part and
// postee_parts fields, added once the number of parts is known.
const partReserve = 64

// hecEvent is one HEC event object.
type hecEvent struct {
	hecMeta
	Event  json.RawMessage   `json:"event"`
	Fields map[string]string `json:"fields,omitempty"`
}

// fields are the indexed fields sent with every HEC event of ex.
func (a *splunkAction) fields(ex *sdk.Execution) map[string]string {
	f := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	set("postee_title", ex.Message.Title)
	set("postee_severity", ex.Message.Severity)
	set("postee_url", ex.Message.URL)
	set("postee_route", ex.Route)
	set("postee_event_id", ex.EventID)
	if a.sendDesc {
		set("postee_description", ex.Message.Description)
	}
	return f
}

// events returns the encoded HEC event objects for ex and the number of
// parts the event was split into (1 when it was not).
func (a *splunkAction) events(ex *sdk.Execution) ([][]byte, int, error) {
	fields := a.fields(ex)
	raw := rawEvent(ex.Event)
	whole, err := encode(hecEvent{hecMeta: a.meta, Event: raw, Fields: fields})
	if err != nil {
		return nil, 0, fmt.Errorf("encode the event: %w", err)
	}
	if len(whole) <= a.limit {
		return [][]byte{whole}, 1, nil
	}
	doc, ok := decode(raw)
	if !ok {
		return [][]byte{whole}, 1, nil
	}
	sp := splitter{limit: a.limit - partReserve, size: func(doc any) int {
		b, err := encodeDoc(doc)
		if err != nil {
			return 0
		}
		e, err := encode(hecEvent{hecMeta: a.meta, Event: b, Fields: fields})
		if err != nil {
			return 0
		}
		return len(e)
	}}
	parts := sp.split(doc)
	if len(parts) < 2 {
		return [][]byte{whole}, 1, nil
	}
	out := make([][]byte, 0, len(parts))
	for i, p := range parts {
		b, err := encodeDoc(p)
		if err != nil {
			return nil, 0, fmt.Errorf("encode part %d: %w", i+1, err)
		}
		f := make(map[string]string, len(fields)+2)
		for k, v := range fields {
			f[k] = v
		}
		f["postee_part"] = strconv.Itoa(i + 1)
		f["postee_parts"] = strconv.Itoa(len(parts))
		e, err := encode(hecEvent{hecMeta: a.meta, Event: b, Fields: f})
		if err != nil {
			return nil, 0, fmt.Errorf("encode part %d: %w", i+1, err)
		}
		out = append(out, e)
	}
	return out, len(parts), nil
}

// rawEvent returns the event as compact JSON; an event that is not JSON
// is sent as a JSON string.
func rawEvent(ev []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Valid(ev) && json.Compact(&buf, ev) == nil {
		return buf.Bytes()
	}
	b, _ := json.Marshal(strings.ToValidUTF8(string(ev), "\uFFFD"))
	return b
}

func decode(raw []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	return v, true
}

// encode writes v as compact JSON without HTML escaping.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func encodeDoc(v any) (json.RawMessage, error) { return encode(v) }

// splitter splits a decoded event into parts whose HEC objects (measured by
// size) fit limit. It splits the largest list with two or more entries
// into consecutive runs, each as long as fits, and goes on with the parts
// that still do not fit (a run of one entry that is too big alone is split
// along its own lists). A part that cannot be split further is kept as it
// is, larger than the limit.
type splitter struct {
	limit int
	size  func(any) int
}

func (s splitter) split(doc any) []any {
	if s.size(doc) <= s.limit {
		return []any{doc}
	}
	path, list := largestList(doc)
	if list == nil {
		return []any{doc}
	}
	base := s.size(with(doc, path, []any{}))
	var runs [][]any
	var cur []any
	curSize := base
	for _, e := range list {
		b, _ := encode(e)
		add := len(b)
		if len(cur) > 0 {
			add++ // the comma
			if curSize+add > s.limit {
				runs = append(runs, cur)
				cur, curSize, add = nil, base, len(b)
			}
		}
		cur = append(cur, e)
		curSize += add
	}
	runs = append(runs, cur)
	if len(runs) < 2 {
		return []any{doc}
	}
	var out []any
	for _, r := range runs {
		part := with(doc, path, r)
		if len(r) > 1 {
			out = append(out, part) // fits by construction
			continue
		}
		out = append(out, s.split(part)...)
	}
	return out
}

// largestList finds the list with at least two entries whose JSON is the
// largest, and returns its path (keys and indices) and entries; nil when
// there is none.
func largestList(doc any) ([]any, []any) {
	var bestPath []any
	var best []any
	bestSize := -1
	var walk func(v any, path []any)
	walk = func(v any, path []any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(e, append(path[:len(path):len(path)], k))
			}
		case []any:
			if len(x) >= 2 {
				b, _ := encode(x)
				if len(b) > bestSize || len(b) == bestSize && pathLess(path, bestPath) {
					bestSize, best, bestPath = len(b), x, append([]any(nil), path...)
				}
			}
			for i, e := range x {
				walk(e, append(path[:len(path):len(path)], i))
			}
		}
	}
	walk(doc, nil)
	return bestPath, best
}

// pathLess orders paths so that the choice among equal sizes does not
// depend on map order.
func pathLess(a, b []any) bool {
	return fmt.Sprint(a) < fmt.Sprint(b)
}

// with returns doc with the value at path replaced by val, copying the
// objects and lists along the path (doc itself is not changed).
func with(doc any, path []any, val any) any {
	if len(path) == 0 {
		return val
	}
	switch x := doc.(type) {
	case map[string]any:
		k := path[0].(string)
		c := make(map[string]any, len(x))
		for kk, vv := range x {
			c[kk] = vv
		}
		c[k] = with(x[k], path[1:], val)
		return c
	case []any:
		i := path[0].(int)
		c := append([]any(nil), x...)
		c[i] = with(x[i], path[1:], val)
		return c
	}
	return doc
}

// pack joins encoded HEC events into post bodies of at most limit bytes
// (events separated by a newline, which HEC accepts); an event larger than
// limit is a post of its own.
func pack(events [][]byte, limit int) [][]byte {
	var posts [][]byte
	var cur []byte
	for _, e := range events {
		if len(cur) > 0 && len(cur)+1+len(e) > limit {
			posts = append(posts, cur)
			cur = nil
		}
		if len(cur) > 0 {
			cur = append(cur, '\n')
		}
		cur = append(cur, e...)
	}
	if len(cur) > 0 {
		posts = append(posts, cur)
	}
	return posts
}

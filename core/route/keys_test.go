package route

import (
	"context"
	"slices"
	"testing"

	"github.com/postee-dev/postee/core/event"
)

// InputKeys names the members of the event a route reads, or says it may
// read any; a route matches an event holding only those members as it
// matches the whole event.
func TestInputKeys(t *testing.T) {
	const filterSrc = `package postee.mine
import rego.v1
default allow := false
allow if { startswith(input.SigMetadata.ID, "TRC-") }
allow if { helper }
helper if { input["Context"].container.id != "" }
`
	for _, tc := range []struct {
		name    string
		input   string
		filters []Filter
		keys    []string
		all     bool
	}{
		{name: "no input"},
		{name: "one key", input: `input.kind == "load"`, keys: []string{"kind"}},
		{name: "function argument", input: `contains(input.image, "alpine")`, keys: []string{"image"}},
		{name: "quoted key and path", input: `input["a b"].c[0] == 1`, keys: []string{"a b"}},
		{name: "nested references", input: `input.a[input.b] == 1`, keys: []string{"a", "b"}},
		{name: "several expressions", input: "input.x == 1\ninput.y.z == 2", keys: []string{"x", "y"}},
		{name: "key from a variable", input: `some k; input[k] == 1`, all: true},
		{name: "whole input to a function", input: `count(input) > 1`, all: true},
		{name: "object.get", input: `object.get(input, "k", 0) == 1`, all: true},
		{name: "walk", input: `walk(input, [p, v]); v == 1`, all: true},
		{name: "assigned", input: "x := input\nx.a == 1", all: true},
		{name: "with", input: `input.a == 1 with input as {"a": 1}`, all: true},
		{name: "iteration", input: `some v in input; v == 1`, all: true},
		{name: "filter with helper rule", filters: []Filter{{Name: "f.rego", Source: filterSrc}}, keys: []string{"SigMetadata", "Context"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Compile(context.Background(), "r", tc.input, tc.filters)
			if err != nil {
				t.Fatal(err)
			}
			keys, all := m.InputKeys()
			slices.Sort(keys)
			keys = slices.Compact(keys)
			want := slices.Clone(tc.keys)
			slices.Sort(want)
			if all != tc.all || !slices.Equal(keys, want) {
				t.Fatalf("InputKeys() = %q, %v; want %q, %v", keys, all, want, tc.all)
			}
			if all {
				return
			}
			// Matching on the members it reads gives what the whole
			// event gives.
			set := map[string]bool{}
			for _, k := range keys {
				set[k] = true
			}
			for _, raw := range []string{
				`{"kind": "load", "image": "alpine:3", "a b": {"c": [1]}, "a": {"k": 1}, "b": "k", "x": 1, "y": {"z": 2}, "big": [1, 2, {"q": "r"}],
				  "SigMetadata": {"ID": "TRC-2"}, "Context": {"container": {"id": "c1"}}}`,
				`{"kind": "other", "image": "ubuntu", "x": 2, "SigMetadata": {"ID": "X"}}`,
				`{}`,
			} {
				whole, err := event.Parse([]byte(raw))
				if err != nil {
					t.Fatal(err)
				}
				part, err := event.ParseKeys([]byte(raw), set)
				if err != nil {
					t.Fatal(err)
				}
				w, err1 := m.Match(context.Background(), whole)
				p, err2 := m.Match(context.Background(), part)
				if w != p || (err1 == nil) != (err2 == nil) {
					t.Errorf("event %s: whole %v (%v), part %v (%v)", raw, w, err1, p, err2)
				}
			}
		})
	}
}

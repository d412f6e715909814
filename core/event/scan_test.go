package event

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/internal/testevents"
)

// filtered is the members of the parsed object obj named in keys.
func filtered(obj ast.Object, keys map[string]bool) ast.Object {
	out := ast.NewObject()
	obj.Foreach(func(k, v *ast.Term) {
		if s, ok := k.Value.(ast.String); ok && keys[string(s)] {
			out.Insert(k, v)
		}
	})
	return out
}

// ParseKeys gives the members a full parse gives for the keys asked, on
// every valid object of the corpus (and, fuzzed, on any).
func FuzzParseKeys(f *testing.F) {
	for _, in := range corpus {
		f.Add([]byte(in), "a")
	}
	f.Add([]byte(`{"a": {"x": "\"}"}, "b": [1, "]", {"c": "\\"}], "a": 2, "k\u0061": 3}`), "ka")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		whole, err := Parse(data)
		if err != nil {
			return // ParseKeys is for accepted (valid) events
		}
		keys := map[string]bool{key: true, "b": true}
		got, err := ParseKeys(data, keys)
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		want := filtered(whole.(ast.Object), keys)
		if ast.Compare(got, want) != 0 {
			t.Fatalf("%q keys %v:\n got %v\nwant %v", data, keys, got, want)
		}
		// An accepted event's ParseKeys goes straight to the offsets of
		// its keys that Accept found: the same members.
		ev, err := Accept(data)
		if err != nil {
			t.Fatalf("Accept(%q): %v", data, err)
		}
		if ev.keys == nil {
			t.Fatalf("Accept(%q) recorded no key offsets", data)
		}
		got2, err := ev.ParseKeys(keys)
		if err != nil || ast.Compare(got2, want) != 0 {
			t.Fatalf("%q keys %v from the offsets:\n got %v (%v)\nwant %v", data, keys, got2, err, want)
		}
	})
}

// Accept records where the top-level keys are, leading space included,
// and ParseKeys reads the members it needs from there.
func TestAcceptedEventParseKeys(t *testing.T) {
	for _, raw := range []string{
		` {"kind": "load", "skip": {"kind": ["}", "\"", {"x": [1, 2e3, true, null]}]}, "n": -1.5, "kind": "last"} `,
		"\n\t{\"ki\\u006ed\":\"last\",\"n\":-1.5}",
		`{}`,
	} {
		ev, err := Accept([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if ev.keys == nil {
			t.Fatalf("%q: no key offsets", raw)
		}
		got, err := ev.ParseKeys(map[string]bool{"kind": true, "n": true, "absent": true})
		if err != nil {
			t.Fatal(err)
		}
		want := ast.MustParseTerm(`{"kind": "last", "n": -1.5}`).Value
		if raw == `{}` {
			want = ast.NewObject()
		}
		if ast.Compare(got, want) != 0 {
			t.Fatalf("%q: got %v, want %v", raw, got, want)
		}
	}
}

func BenchmarkAcceptedParseKeys(b *testing.B) {
	raw := testevents.Trivy(1, 20)
	keys := map[string]bool{"image": true}
	ev, err := Accept(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ev.ParseKeys(keys); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseKeys(t *testing.T) {
	raw := []byte(` {"kind": "load", "skip": {"deep": ["}", "\"", {"x": [1, 2e3, true, null]}]}, "n": -1.5, "kind": "last"} `)
	got, err := ParseKeys(raw, map[string]bool{"kind": true, "n": true, "absent": true})
	if err != nil {
		t.Fatal(err)
	}
	want := ast.MustParseTerm(`{"kind": "last", "n": -1.5}`).Value
	if ast.Compare(got, want) != 0 {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Not an object: the error of a full parse.
	for _, bad := range []string{`[1]`, ``, `"x"`} {
		if _, err := ParseKeys([]byte(bad), map[string]bool{"a": true}); err == nil {
			t.Errorf("ParseKeys(%q) = nil error", bad)
		}
	}
	// nil keys: everything.
	all, err := ParseKeys(raw, nil)
	if err != nil || all.Len() != 3 {
		t.Fatalf("ParseKeys(nil) = %v, %v", all, err)
	}
}

func BenchmarkParseKeys(b *testing.B) {
	raw := testevents.Trivy(1, 20)
	keys := map[string]bool{"kind": true}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseKeys(raw, keys); err != nil {
			b.Fatal(err)
		}
	}
}

package event

import (
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/postee-dev/postee/internal/testevents"
)

// reference parses the slow, obviously right way.
func reference(data []byte) (ast.Value, error) {
	var v any
	if err := util.UnmarshalJSON(data, &v); err != nil {
		return nil, err
	}
	return ast.InterfaceToValue(v)
}

var corpus = []string{
	`{}`, `{"a":1}`, `{"a":[1,2.5,-3e10,0,-0.0,1E+2]}`, `{"s":"plain","e":"q\"\\/\b\f\n\r\t","u":"\u00e9\ud83d\ude00"}`,
	`{"lone":"\ud800x","lone2":"\udc00","pair-broken":"\ud800\u0041"}`, `{"dup":1,"dup":2}`, `{"n":null,"t":true,"f":false}`,
	`{"nested":{"a":{"b":[{"c":[]}]}}}`, " \n{ \"sp\" : [ 1 , 2 ] }\t", `{"big":123456789012345678901234567890}`,
	"{\"bad-utf8\":\"a\xffb\xc3\"}",
	`{"a":}`, `{"a":1,}`, `{"a" 1}`, `[1,]`, `{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}",
	`{"a":tru}`, `{"a":1} {}`, `{"a":"\u12"}`, `{`, `{"a"`, `{"a":`, `{"a":[`, `"str"`, `12`, `[]`,
	string(testevents.Trivy(1, 20)), string(testevents.Tracee("TRC-2", "node-1")),
}

func TestParseMatchesReference(t *testing.T) {
	for _, in := range corpus {
		got, gerr := parseValue([]byte(in))
		want, werr := reference([]byte(in))
		if (gerr != nil) != (werr != nil) {
			t.Errorf("%.60q: error %v, reference error %v", in, gerr, werr)
			continue
		}
		if gerr == nil && ast.Compare(got, want) != 0 {
			t.Errorf("%.60q:\n got %v\nwant %v", in, got, want)
		}
	}
}

// Validate and Parse agree: an accepted event always parses.
func FuzzValidate(f *testing.F) {
	for _, in := range corpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		verr := Validate(data)
		v, perr := Parse(data)
		if (verr == nil) != (perr == nil) {
			t.Fatalf("%q: Validate %v, Parse %v", data, verr, perr)
		}
		if perr == nil {
			if _, ok := v.(ast.Object); !ok {
				t.Fatalf("%q parsed to %T", data, v)
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, in := range corpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := parseValue(data)
		want, werr := reference(data)
		if (gerr != nil) != (werr != nil) {
			t.Fatalf("%q: error %v, reference error %v", data, gerr, werr)
		}
		if gerr == nil && ast.Compare(got, want) != 0 {
			t.Fatalf("%q:\n got %v\nwant %v", data, got, want)
		}
	})
}

func TestParseRejects(t *testing.T) {
	tests := map[string]string{
		``:        "the body is empty",
		`  `:      "the body is empty",
		`[1]`:     "got an array",
		`"s"`:     "got a string",
		`12`:      "got a number",
		`null`:    "got null",
		`true`:    "got a boolean",
		`<html>`:  "not JSON",
		`{"a":1`:  "invalid JSON",
		`{} junk`: "invalid JSON",
	}
	for in, want := range tests {
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", in, err, want)
		}
		if _, err := Accept([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Accept(%q) = %v, want %q", in, err, want)
		}
	}
}

func TestDeepNestingIsRefused(t *testing.T) {
	deep := `{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	if _, err := Parse([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("err = %v", err)
	}
	if err := Validate([]byte(deep)); err == nil {
		t.Fatal("Validate must refuse it too")
	}
	// Just under the limit: accepted by both, so an accepted event always parses.
	ok := `{"a":` + strings.Repeat("[", 9990) + strings.Repeat("]", 9990) + `}`
	if err := Validate([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]byte(ok)); err != nil {
		t.Fatal(err)
	}
}

func TestNewIDsAreUniqueAndOrdered(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 1000; i++ {
		id := NewID()
		if len(id) != 32 || seen[id] {
			t.Fatalf("id %q", id)
		}
		if id[:12] < prev {
			t.Fatalf("ids go back in time: %s after %s", id, prev)
		}
		prev = id[:12]
		seen[id] = true
	}
}

func BenchmarkParse(b *testing.B) {
	raw := testevents.Trivy(1, 20)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseReference(b *testing.B) {
	raw := testevents.Trivy(1, 20)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reference(raw); err != nil {
			b.Fatal(err)
		}
	}
}

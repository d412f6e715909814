package template

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/internal/testevents"
)

// TestRawJSONMatchesRego renders events with the bundled
// postee.rawmessage.json natively, from the parsed event and from its
// bytes, and through its Rego, and wants the same message byte for byte.
func TestRawJSONMatchesRego(t *testing.T) {
	ctx := context.Background()
	r := compile(t, Spec{RegoPackage: rawJSONPackage})
	if r.native == nil {
		t.Fatal("the bundled postee.rawmessage.json is not rendered natively")
	}
	rego := *r
	rego.native = nil

	events := map[string]string{
		"trivy":          string(testevents.Trivy(7, 20)),
		"trivy report":   string(testevents.TrivyReport("registry.example.com/team/web:1.4.2", 30)),
		"aqua scan":      string(testevents.AquaScan("registry.example.com/team/web:1.4.2", 10)),
		"tracee":         string(testevents.Tracee("TRC-2", "node-1")),
		"empty":          `{}`,
		"only postee":    `{"postee": {"AquaServer": "x"}}`,
		"own postee key": `{"image": "alpine", "postee": 1, "posteeX": 2}`,
		"unsorted keys":  `{"z": 1, "a": {"y": [], "b": {}}, "m": [1, {"k": null}]}`,
		"numbers":        `{"a": 1.50, "b": -0, "c": 1e400, "d": 12345678901234567890123, "e": 2E-3}`,
		"escapes":        `{"html": "<a href=\"x\">&amp;</a>", "ctl": "\u0001\t\n\\", "sep": "\u2028\u2029", "uni": "ü ✓ 😀", "esc": "\u003c\u00e9"}`,
		"odd keys":       `{"": 1, "a b": 2, "\u00e9": 3, "<k>": 4, "A": 5}`,
		"duplicate key":  `{"a": 1, "a": 2}`,
		"deep":           `{"a": [[[{"b": [true, false, null]}]]], "s": ""}`,
		"bools":          `{"t": true, "f": false, "n": null}`,
		"escaped keys":   `{"b": 1, "\u0061": 2, "a\"q": 3, "\u00e9": 4, "a": 5}`,
		"nested dups":    `{"x": {"k": 1, "j": 0, "k": [2]}, "x": {"k": 3, "k": 4}}`,
		"spaces":         " \n\t{ \"a\" :\r\n[ 1 , 2 ] , \"b\":{ } , \"c\" : [ ] }\n ",
		"invalid utf8":   "{\"s\": \"a\xffb\", \"k\xfe\": 1}",
		"slash escapes":  `{"p": "a\/b", "surrogates": "\ud83d\ude00 \ud800 x"}`,
		"postee between": `{"a": 1, "postee": 2, "b": {"c": 3, "d": [4]}}`,
		"postee first":   `{"postee": 1, "a": 2}`,
		"sorted nested":  `{"a": {"b": 1, "c": {"d": "\u00e9", "e": "\n"}}, "f": [{"g": 1, "h": 2}, {"h": 1, "g": 2}]}`,
	}
	for name, raw := range events {
		t.Run(name, func(t *testing.T) {
			in := Input(parse(t, []byte(raw)), "https://aqua.example.com/")
			got, err := r.Render(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := rego.Render(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("native:\n%s\nRego:\n%s", got.Description, want.Description)
			}
			fromBytes, ok := r.RenderRaw([]byte(raw))
			if !ok {
				t.Fatal("RenderRaw declined a JSON object")
			}
			if fromBytes != want {
				t.Errorf("from the bytes:\n%s\nRego:\n%s", fromBytes.Description, want.Description)
			}
		})
	}
}

// The native renderer declines what it does not write exactly as the Rego
// would, which then renders it (or fails) as before.
func TestRawJSONDeclines(t *testing.T) {
	ctx := context.Background()
	r := compile(t, Spec{RegoPackage: rawJSONPackage})
	rego := *r
	rego.native = nil
	mixed := ast.NewObject(
		[2]*ast.Term{ast.StringTerm("a"), ast.IntNumberTerm(1)},
		[2]*ast.Term{ast.IntNumberTerm(2), ast.StringTerm("two")})
	notJSON := ast.NewObject([2]*ast.Term{ast.StringTerm("r"), ast.VarTerm("x")})
	for name, in := range map[string]ast.Value{
		"array":               ast.NewArray(ast.IntNumberTerm(1)),
		"string":              ast.String("s"),
		"non-string key":      mixed,
		"value not JSON-able": notJSON,
	} {
		t.Run(name, func(t *testing.T) {
			if _, ok := renderRawJSON(in); ok {
				t.Fatal("rendered natively")
			}
			got, gotErr := r.Render(ctx, in)
			want, wantErr := rego.Render(ctx, in)
			if got != want || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Errorf("got %q, %v; want %q, %v", got.Description, gotErr, want.Description, wantErr)
			}
		})
	}
}

// Only the bundled package is rendered natively: a user template that
// takes its package name is the user's Rego.
func TestRawJSONUserPackageNotNative(t *testing.T) {
	dir := t.TempDir()
	rego := "package postee.rawmessage.json\n\ntitle := \"mine\"\n\nresult := \"custom\"\n"
	if err := os.WriteFile(filepath.Join(dir, "raw.rego"), []byte(rego), 0o600); err != nil {
		t.Fatal(err)
	}
	ut, err := LoadUserTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := compile(t, Spec{RegoPackage: rawJSONPackage, UserTemplates: ut})
	if r.native != nil {
		t.Fatal("a user package named postee.rawmessage.json is rendered natively")
	}
	if _, ok := r.RenderRaw([]byte(`{"image": "alpine"}`)); ok {
		t.Fatal("a user package named postee.rawmessage.json is rendered from the bytes")
	}
	m := render(t, r, `{"image": "alpine"}`)
	if m.Title != "mine" || !strings.Contains(m.Description, "custom") {
		t.Errorf("got %+v", m)
	}
}

// RenderRaw declines what is not a JSON object, and templates other than
// the bundled postee.rawmessage.json.
func TestRenderRawDeclines(t *testing.T) {
	r := compile(t, Spec{RegoPackage: rawJSONPackage})
	for _, raw := range []string{`[1]`, `"x"`, `1`, ``, `  `} {
		if _, ok := r.RenderRaw([]byte(raw)); ok {
			t.Errorf("RenderRaw(%q) did not decline", raw)
		}
	}
	other := compile(t, Spec{RegoPackage: "postee.vuls.html"})
	if _, ok := other.RenderRaw([]byte(`{"image": "alpine"}`)); ok {
		t.Error("postee.vuls.html rendered from the bytes")
	}
}

func BenchmarkRawJSONParsedOrBytes(b *testing.B) {
	r, err := Compile(context.Background(), Spec{RegoPackage: rawJSONPackage})
	if err != nil {
		b.Fatal(err)
	}
	raw := testevents.Trivy(7, 20)
	b.Run("parsed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, err := event.Parse(raw)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Render(context.Background(), Input(v, "")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bytes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := r.RenderRaw(raw); !ok {
				b.Fatal("declined")
			}
		}
	})
}

// The bytes path writes what the parsed path writes, for any JSON object.
func FuzzRawJSONBytes(f *testing.F) {
	for _, seed := range []string{`{"b": 1, "a": [true, null, -1.5e3], "postee": {}}`, `{"\u00e9": "\ud83d\ude00", "a\"": "\u2028<>&"}`,
		`{"a": {"b": 1, "b": 2}, "a": 3}`, "{\"x\": \"a\xffb\", \"\": [[], {}]}"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := event.Parse(raw)
		if err != nil {
			return
		}
		want, ok := renderRawJSON(v)
		if !ok {
			t.Fatalf("%q: the parsed path declined", raw)
		}
		got, ok := renderRawJSONBytes(raw)
		if !ok || got != want {
			t.Fatalf("%q:\nbytes  %q (%v)\nparsed %q", raw, got.Description, ok, want.Description)
		}
	})
}

package template

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/internal/testevents"
)

// TestRawJSONMatchesRego renders events with the bundled
// postee.rawmessage.json natively and through its Rego, and wants the same
// message byte for byte.
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
	m := render(t, r, `{"image": "alpine"}`)
	if m.Title != "mine" || !strings.Contains(m.Description, "custom") {
		t.Errorf("got %+v", m)
	}
}

package template

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/internal/regoeval"
)

func TestTemplateRestrictedBuiltins(t *testing.T) {
	leak := "package leak\n\ntitle := \"t\"\n\nresult := opa.runtime().env.POSTEE_API_KEY\n"
	send := "package send\n\ntitle := \"t\"\n\nresult := http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1/\"}).raw_body\n"
	tests := []struct {
		name    string
		spec    Spec
		builtin string
	}{
		{"body", Spec{Name: "leaky", Body: leak}, "opa.runtime"},
		{"body with http.send", Spec{Name: "leaky", Body: send}, "http.send"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(context.Background(), tt.spec)
			if err == nil {
				t.Fatal("compiled")
			}
			for _, want := range []string{`template "leaky"`, "line 5", "builtin " + tt.builtin + " is not allowed", "rego-allow-builtins"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want %q", err, want)
				}
			}
		})
	}

	// The config's opt-in.
	spec := Spec{Name: "leaky", Body: leak, Policy: regoeval.Policy{Allow: []string{"opa.runtime"}}}
	if _, err := Compile(context.Background(), spec); err != nil {
		t.Fatalf("allowed: %v", err)
	}

	// Files of the user's template directory too.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "leak.rego"), []byte(leak), 0o600); err != nil {
		t.Fatal(err)
	}
	user, err := LoadUserTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(context.Background(), Spec{Name: "from-dir", RegoPackage: "leak", UserTemplates: user})
	if err == nil || !strings.Contains(err.Error(), `template "from-dir"`) || !strings.Contains(err.Error(), "builtin opa.runtime is not allowed") {
		t.Fatalf("user dir: err = %v", err)
	}
	user, err = LoadUserTemplates(dir, regoeval.Policy{Allow: []string{"opa.runtime"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(context.Background(), Spec{Name: "from-dir", RegoPackage: "leak", UserTemplates: user}); err != nil {
		t.Fatalf("user dir, allowed: %v", err)
	}
}

func TestTemplateEvaluationDeadline(t *testing.T) {
	slow := "package slow\n\ntitle := \"t\"\n\nresult := \"r\" if {\n\tsome i in numbers.range(1, 100000)\n\tsome j in numbers.range(1, 100000)\n\ti * j == -1\n}\n"
	r, err := Compile(context.Background(), Spec{Name: "slow", Body: slow, Policy: regoeval.Policy{Timeout: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = r.Render(context.Background(), ast.NewObject())
	if err == nil || !strings.Contains(err.Error(), `template "slow"`) || !strings.Contains(err.Error(), "evaluation stopped after 100ms") {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Render took %s", took)
	}
}

package route

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/internal/regoeval"
)

func TestRestrictedBuiltinsAreLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		filters []Filter
		builtin string
		line    int
	}{
		{"http.send in input", `http.send({"method": "GET", "url": "http://127.0.0.1:1/"}).status_code == 200`, nil, "http.send", 1},
		{"dns lookup", "count(net.lookup_ip_addr(\"example.com\")) > 0", nil, "net.lookup_ip_addr", 1},
		{"opa.runtime on line 2", "input.a == 1\nopa.runtime().env.POSTEE_API_KEY != \"\"", nil, "opa.runtime", 2},
		{"http.send in a filter", "", []Filter{{Name: "exfil.rego", Source: "package exfil\n\nallow if {\n\thttp.send({\"method\": \"POST\", \"url\": \"http://127.0.0.1:1/\", \"body\": input})\n}\n"}}, "http.send", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(context.Background(), "leaky", tt.input, tt.filters)
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a route error", err)
			}
			for _, want := range []string{`route "leaky"`, "builtin " + tt.builtin + " is not allowed", "rego-allow-builtins"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want %q", err, want)
				}
			}
			if re.Line != tt.line {
				t.Errorf("line = %d, want %d", re.Line, tt.line)
			}
		})
	}
}

func TestAllowedRestrictedBuiltinCompiles(t *testing.T) {
	p := regoeval.Policy{Allow: []string{"opa.runtime"}}
	m, err := Compile(context.Background(), "r", `is_object(opa.runtime())`, nil, WithPolicy(p))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Match(context.Background(), ast.NewObject()); !ok || err != nil {
		t.Fatalf("Match = %v, %v", ok, err)
	}
	// Allowing one does not allow the others.
	if _, err := Compile(context.Background(), "r", `http.send({"method": "GET", "url": "http://127.0.0.1:1/"})`, nil, WithPolicy(p)); err == nil {
		t.Fatal("http.send compiled with only opa.runtime allowed")
	}
	if err := (regoeval.Policy{Allow: []string{"http.get"}}).Check(); err == nil || !strings.Contains(err.Error(), `"http.get"`) {
		t.Fatalf("Check = %v", err)
	}
}

// The pure net.cidr_* functions stay available.
func TestCIDRFunctionsStayAvailable(t *testing.T) {
	m, err := Compile(context.Background(), "r", `net.cidr_contains("10.0.0.0/8", input.ip)`, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := ast.InterfaceToValue(map[string]any{"ip": "10.1.2.3"})
	if ok, err := m.Match(context.Background(), in); !ok || err != nil {
		t.Fatalf("Match = %v, %v", ok, err)
	}
}

func TestEvaluationDeadline(t *testing.T) {
	// 10^10 iterations: minutes of work without a deadline.
	loop := "some i in numbers.range(1, 100000)\nsome j in numbers.range(1, 100000)\ni * j == -1"
	m, err := Compile(context.Background(), "slow", loop, nil, WithPolicy(regoeval.Policy{Timeout: 100 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ok, err := m.Match(context.Background(), ast.NewObject())
	took := time.Since(start)
	if ok || err == nil {
		t.Fatalf("Match = %v, %v", ok, err)
	}
	for _, want := range []string{`route "slow"`, "evaluation stopped after 100ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want %q", err, want)
		}
	}
	if took > 10*time.Second {
		t.Errorf("Match took %s", took)
	}
	// The default applies without a policy.
	m, _ = Compile(context.Background(), "r", "input.a == 1", nil)
	if m.timeout != regoeval.DefaultTimeout {
		t.Errorf("default timeout = %s", m.timeout)
	}
}

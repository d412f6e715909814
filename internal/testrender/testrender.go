// Package testrender renders postee's bundled Rego templates on an event in
// tests, as postee does before it calls an action, so that a plugin's tests
// can feed it the message a real route would send. It is part of the root
// module: plugins' tests may import it, the SDK may not.
package testrender

import (
	"context"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/sdk"
)

// AquaServer is the aqua-server the plugins' tests render with.
const AquaServer = "https://aqua.example.com"

// EvalTimeout bounds one evaluation when spec sets no rego-timeout: more
// than postee's default (2s), which a large report can exceed under -race
// on a loaded machine; the tests are about the output, not the deadline.
const EvalTimeout = time.Minute

// Compile compiles spec, named "t" when it has no name, failing t on an
// error.
func Compile(t testing.TB, spec template.Spec) *template.Renderer {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "t"
	}
	if spec.Policy.Timeout == 0 {
		spec.Policy.Timeout = EvalTimeout
	}
	r, err := template.Compile(context.Background(), spec)
	if err != nil {
		t.Fatalf("compile template %s: %v", name(spec), err)
	}
	return r
}

// Render renders spec (a bundled rego-package, or a legacy renderer) on the
// raw event with the given aqua-server ("" for none), as postee does,
// failing t on an error.
func Render(t testing.TB, spec template.Spec, raw []byte, aquaServer string) sdk.Message {
	t.Helper()
	return With(t, Compile(t, spec), raw, aquaServer)
}

// Package renders the bundled template pkg on the raw event as postee does
// for a route with `rego-package: <pkg>` and no aqua-server.
func Package(t testing.TB, pkg string, raw []byte) sdk.Message {
	t.Helper()
	return Render(t, template.Spec{RegoPackage: pkg}, raw, "")
}

// With renders the compiled r on the raw event with the given aqua-server,
// failing t on an error.
func With(t testing.TB, r *template.Renderer, raw []byte, aquaServer string) sdk.Message {
	t.Helper()
	v, err := event.Parse(raw)
	if err != nil {
		t.Fatalf("parse event: %v", err)
	}
	m, err := r.Render(context.Background(), template.Input(v, aquaServer))
	if err != nil {
		t.Fatalf("render %s: %v", r.Package(), err)
	}
	return m
}

func name(spec template.Spec) string {
	if spec.RegoPackage != "" {
		return spec.RegoPackage
	}
	return spec.Name
}

package main

import (
	"context"
	"testing"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/sdk"
)

// render renders a bundled template (a rego-package name, or
// "legacy:html" for the legacy HTML renderer) on an event.
func render(t testing.TB, pkg string, raw []byte) sdk.Message {
	t.Helper()
	spec := template.Spec{Name: "t", RegoPackage: pkg}
	if pkg == "legacy:html" {
		spec = template.Spec{Name: "t", LegacyScanRenderer: "html"}
	}
	r, err := template.Compile(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	v, err := event.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Render(context.Background(), template.Input(v, "https://aqua.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

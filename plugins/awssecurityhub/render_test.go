package main

import (
	"context"
	"testing"

	coreevent "github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/sdk"
)

// render renders the bundled template pkg on the raw event, as postee does
// for a route with `rego-package: <pkg>`.
func render(t *testing.T, pkg string, raw []byte) sdk.Message {
	t.Helper()
	ctx := context.Background()
	r, err := template.Compile(ctx, template.Spec{Name: "t", RegoPackage: pkg})
	if err != nil {
		t.Fatalf("compile %s: %v", pkg, err)
	}
	v, err := coreevent.Parse(raw)
	if err != nil {
		t.Fatalf("parse event: %v", err)
	}
	m, err := r.Render(ctx, template.Input(v, ""))
	if err != nil {
		t.Fatalf("render %s: %v", pkg, err)
	}
	return m
}

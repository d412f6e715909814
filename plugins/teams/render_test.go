package main

import (
	"testing"

	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/internal/testrender"
	"github.com/postee-dev/postee/sdk"
)

// render renders a bundled template (a rego-package name, or
// "legacy:html" for the legacy HTML renderer) on an event.
func render(t testing.TB, pkg string, raw []byte) sdk.Message {
	t.Helper()
	spec := template.Spec{RegoPackage: pkg}
	if pkg == "legacy:html" {
		spec = template.Spec{LegacyScanRenderer: "html"}
	}
	return testrender.Render(t, spec, raw, testrender.AquaServer)
}

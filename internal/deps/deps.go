//go:build tools

// Package deps pins modules while the code that uses them is being written.
package deps

import (
	_ "github.com/open-policy-agent/opa/v1/rego"
	_ "github.com/spf13/cobra"
	_ "go.yaml.in/yaml/v3"
)

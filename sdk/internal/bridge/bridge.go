// Package bridge lets the sdktest harness reach the SDK's gRPC server
// without package sdk exporting a generated type.
package bridge

import (
	"github.com/hashicorp/go-hclog"

	"github.com/postee-dev/postee/sdk/protocol"
)

// NewServer is set by package sdk: it returns the gRPC service for an
// sdk.Plugin (passed as any, since this package cannot import sdk).
var NewServer func(plugin any) protocol.Plugin

// SetLogger is set by package sdk: it replaces the logger sdk.Logger returns.
var SetLogger func(hclog.Logger)

package main

import "github.com/postee-dev/postee/sdk"

// plugin is the action type this binary serves: `type: nexusIq` (the type is
// matched case-insensitively).
var plugin = sdk.Plugin{Type: "nexusiq", New: newAction}

func main() {
	sdk.Serve(plugin)
}

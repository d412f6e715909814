package main

import "github.com/postee-dev/postee/sdk"

// plugin is the action type this binary serves: `type: dependencytrack`.
var plugin = sdk.Plugin{Type: "dependencytrack", New: newAction}

func main() {
	sdk.Serve(plugin)
}

package main

import "github.com/postee-dev/postee/sdk"

// plugin is the action type this binary serves: `type: awssecurityhub`.
var plugin = sdk.Plugin{Type: "awssecurityhub", New: newAction}

func main() {
	sdk.Serve(plugin)
}

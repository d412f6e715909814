// file: main.go

// Command postee-action-greet is a postee action plugin: for every event
// routed to it, it POSTs a short greeting about the event to a URL.
package main

import "github.com/postee-dev/postee/sdk"

// plugin is the action type this binary serves: `type: greet` in the config.
// New is called once for every greet action of the config.
var plugin = sdk.Plugin{
	Type: "greet",
	New:  func() sdk.Action { return &greet{} },
}

func main() {
	sdk.Serve(plugin) // never returns: postee stops the process
}

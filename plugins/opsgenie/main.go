package main

import "github.com/postee-dev/postee/sdk"

func main() {
	sdk.Serve(sdk.Plugin{Type: "opsgenie", New: newAction})
}

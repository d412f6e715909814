package main

import "github.com/postee-dev/postee/sdk"

func main() {
	sdk.Serve(sdk.Plugin{Type: "docker", New: newAction})
}

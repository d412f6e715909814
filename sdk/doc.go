// Package sdk is what a third party imports to write a postee action.
//
// An action is a Go type implementing Action. A plugin binary serves one action
// type by calling Serve from main:
//
//	func main() {
//		sdk.Serve(sdk.Plugin{Type: "mytype", New: func() sdk.Action { return &myAction{} }})
//	}
//
// Built with `go build -o <plugin-dir>/postee-action-mytype`, it is picked up by
// postee for every action whose `type` is mytype. The generated protocol code
// is internal to postee; plugin authors only see the plain Go types here.
// Package sdktest runs an action through the real gRPC encoding in go test.
package sdk

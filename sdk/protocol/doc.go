// Package protocol is the wire between the postee host and an action
// plugin: the go-plugin handshake, the protocol version, and one adapter
// pair in the manner of go-plugin's examples. Plugin is the protocol in
// plain Go types; GRPCServer serves a Plugin as the generated gRPC service
// (package actionpb) and NewClient turns the generated client back into a
// Plugin. Executions travel on the Executions stream, or on the executions
// socket (socket.go) when the host passes one and the plugin announces it.
// Package sdk implements Plugin in the plugin process; postee's
// plugin host and the sdktest harness use NewClient. The message
// conversions to and from protobuf exist here once. Plugin authors use
// package sdk, which has no generated type in its API.
package protocol

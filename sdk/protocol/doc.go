// Package protocol is the wire between the postee host and an action
// plugin: the go-plugin handshake, the protocol version and the plugin set
// that maps the gRPC service of package actionpb onto go-plugin. postee
// itself and the sdktest harness use it; plugin authors use package sdk,
// which has no generated type in its API.
package protocol

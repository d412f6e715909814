// Package wire owns the go-plugin plumbing shared by the postee host and the
// action SDK: the handshake, the protocol version and the plugin set that maps
// the gRPC service in internal/actionpb onto go-plugin. Nothing outside this
// module sees it; plugin authors use package sdk.
package wire

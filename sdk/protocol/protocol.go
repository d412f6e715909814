package protocol

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/postee-dev/postee/sdk/protocol/actionpb"
)

// ProtocolVersion is the major version of the action protocol. It must equal
// the version in the .proto package name (postee.action.v1).
const ProtocolVersion = 1

// PluginName is the name under which the action service is dispensed.
const PluginName = "action"

// Handshake is shared by host and plugins. The cookie only stops a user from
// running a plugin binary by hand; it is not a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "POSTEE_ACTION_PLUGIN",
	MagicCookieValue: "8d0c3b8e-postee-action",
}

// ActionPlugin adapts the action protocol to go-plugin: the plugin side
// serves Impl (a Plugin in plain Go types) as the gRPC service; the host
// side dispenses a Plugin (NewClient over the connection).
type ActionPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Plugin
}

// GRPCServer registers the implementation on the plugin's gRPC server.
func (p *ActionPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	actionpb.RegisterActionServer(s, GRPCServer(p.Impl))
	return nil
}

// GRPCClient returns the host's Plugin over the connection.
func (p *ActionPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(actionpb.NewActionClient(c)), nil
}

// VersionedPlugins is the plugin set for every protocol version this build
// speaks, given the plugin-side implementation (nil on the host).
func VersionedPlugins(impl Plugin) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProtocolVersion: {PluginName: &ActionPlugin{Impl: impl}},
	}
}

// MaxMessageSize bounds one gRPC message either way (events and rendered
// messages are limited well below it by the webhook's body limit).
const MaxMessageSize = 64 << 20

var _ plugin.GRPCPlugin = (*ActionPlugin)(nil)

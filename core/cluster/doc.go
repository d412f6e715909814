// Package cluster is postee's controller/runner mode over NATS.
//
// The controller embeds a NATS server with JetStream (or uses an existing
// cluster). Runners connect with their own identity (a client certificate
// mapped to the runner's name, or the runner's own NKey), and the server's
// permissions confine each runner to its own subjects:
//
//	postee.ctl.<runner>.bootstrap   runner → controller: request its part of the config
//	postee.runner.<runner>.config   controller → runner: the config changed, bootstrap again
//	postee.work.<runner>            JetStream POSTEE_WORK, durable consumer <runner>: actions to run
//	postee.up.<runner>.event        JetStream POSTEE_UP: events that arrived at the runner
//	postee.up.<runner>.outcome      JetStream POSTEE_UP: outcomes of executions dispatched to the runner
//	postee.up.<runner>.outcomes     JetStream POSTEE_UP: several of them in one message (codec.go), when the controller offers it
//	postee.up.<runner>.local        JetStream POSTEE_UP: outcomes of actions run for events that arrived at the runner
//
// The runner's name in a subject is its identity: the server lets a runner
// publish only under its own name. The controller accepts the outcome of a
// dispatched execution only from the runner it was dispatched to, and keeps
// the ids of events that runners report in a namespace per runner. Work and reports are durable (JetStream,
// file storage), de-duplicated by message id, and each execution id is run at
// most once per runner (a bbolt record of finished executions).
package cluster

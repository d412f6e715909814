package server

import (
	"context"
	"errors"
	"time"

	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/jsstore"
)

// openShared makes a controller on an external NATS cluster keep its
// inbox, finished executions and route plugins' state in JetStream
// (core/jsstore), shared with the other controllers of the cluster. The
// local store keeps the dead letters.
func (srv *Server) openShared(ctx context.Context, opts *engine.Options) error {
	c := srv.s.Cluster
	st, err := jsstore.Open(ctx, srv.controller.Conn(), jsstore.Options{Replicas: c.NATSReplicas, AckWait: c.NATSAckWait,
		MaxInboxBytes: c.NATSMaxInboxBytes, Logger: srv.log})
	if err != nil {
		return err
	}
	srv.shared = st
	opts.Inbox, opts.RoutePlugins, opts.Done = st, st, st
	opts.SharedInbox = !srv.s.NotDurable
	if srv.s.NotDurable {
		srv.log.Warn("--no-durable-ingest: events are processed by the controller that accepted them, and lost with it")
	}
	return nil
}

// pullShared hands the events of the shared inbox to the engine, as many
// at once as it has workers and queue for.
func (srv *Server) pullShared() {
	if srv.shared == nil || srv.s.NotDurable {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv.stopPull, srv.pulled = cancel, make(chan struct{})
	capacity := srv.engine.Capacity()
	go func() {
		defer close(srv.pulled)
		err := srv.shared.Run(ctx, capacity, func(d jsstore.Delivery) {
			if err := srv.engine.Deliver(ctx, d.Accepted, d.Redelivered); err != nil {
				if !errors.Is(err, engine.ErrStopped) && ctx.Err() == nil {
					srv.log.Error("event from the shared inbox not queued; handed back", "event", d.ID, "error", err)
				}
				srv.shared.Abandon(d.ID)
			}
		})
		if err != nil {
			srv.log.Error("the shared inbox stopped", "error", err)
		}
	}()
}

// pruneShared drops the expired de-duplication keys of the shared bucket
// (jsstore.UniqueBucket). Every controller does it at its maintenance;
// the deletes are compare-and-set, so they do not race.
func (srv *Server) pruneShared(now time.Time) {
	if srv.shared == nil {
		return
	}
	if n, err := srv.shared.Prune(now); err != nil {
		srv.log.Error("store maintenance: JetStream bucket "+jsstore.UniqueBucket, "error", err)
	} else if n > 0 {
		srv.log.Debug("expired de-duplication keys dropped", "bucket", jsstore.UniqueBucket, "keys", n)
	}
}

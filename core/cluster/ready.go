package cluster

import (
	"errors"
	"fmt"
)

// Ready reports whether the controller can take and dispatch events: its
// NATS server (embedded) runs and its connection to NATS (embedded or
// --nats-url) is up. Cheap, no round trip: for /readyz.
func (c *Controller) Ready() error {
	if c.emb != nil && !c.emb.srv.Running() {
		return errors.New("the embedded NATS server is not running")
	}
	if c.nc == nil {
		return errors.New("not connected to NATS")
	}
	if !c.nc.IsConnected() {
		return fmt.Errorf("not connected to NATS (%s)", c.nc.Status())
	}
	return nil
}

// Ready reports whether the runner is connected to its controller (it is
// bootstrapped once StartRunner returned). Cheap, for /readyz.
func (r *Runner) Ready() error {
	if r.nc == nil || !r.nc.IsConnected() {
		status := "never connected"
		if r.nc != nil {
			status = r.nc.Status().String()
		}
		return fmt.Errorf("not connected to the controller at %s (%s)", r.s.URL, status)
	}
	return nil
}

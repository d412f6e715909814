package jsretry

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterNoPeers is JetStream's error code for "no suitable peers for
// placement": a cluster still forming does not know all its peers yet.
// PlacementWait bounds how long Do takes it for that.
const (
	clusterNoPeers = 10005
	PlacementWait  = 30 * time.Second
)

// Do tries a JetStream request f again, 5 seconds at a time, until ctx
// ends, while it fails in a way that may pass: no answer in time, no
// JetStream or no leader yet (Unavailable), or, for PlacementWait, no
// place for a replicated stream yet (then the error is returned).
func Do[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	start := time.Now()
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := f(actx)
		cancel()
		var apiErr *jetstream.APIError
		placement := errors.As(err, &apiErr) && apiErr.ErrorCode == clusterNoPeers && time.Since(start) < PlacementWait
		if err == nil || ctx.Err() != nil || !(placement || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
			errors.Is(err, jetstream.ErrNoHeartbeat) || Unavailable(err)) {
			return v, err
		}
		if placement {
			// Answered at once: not again at once.
			select {
			case <-ctx.Done():
				return v, err
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
}

// Unavailable reports JetStream answers that a moment later may differ (no
// meta leader yet, not enough peers up yet).
func Unavailable(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders) ||
		(errors.As(err, &apiErr) && (apiErr.Code == 503 || apiErr.ErrorCode == 10023 /* insufficient resources */))
}

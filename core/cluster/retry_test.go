package cluster

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// A replicated stream that a cluster still forming has no place for yet
// (JetStream's "no suitable peers for placement") is asked for again.
func TestRetryJSWaitsForPlacement(t *testing.T) {
	calls := 0
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	v, err := RetryJS(ctx, func(context.Context) (int, error) {
		if calls++; calls < 3 {
			return 0, &jetstream.APIError{Code: 400, ErrorCode: jsClusterNoPeers, Description: "no suitable peers for placement"}
		}
		return 7, nil
	})
	if err != nil || v != 7 || calls != 3 {
		t.Fatalf("RetryJS = %d, %v after %d calls; want 7 after 3", v, err, calls)
	}
	// Other refusals are returned at once.
	calls = 0
	_, err = RetryJS(ctx, func(context.Context) (int, error) {
		calls++
		return 0, &jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use"}
	})
	if err == nil || calls != 1 {
		t.Fatalf("RetryJS = %v after %d calls; want the error after 1", err, calls)
	}
}

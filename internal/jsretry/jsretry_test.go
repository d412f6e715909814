package jsretry

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A replicated stream that a cluster still forming has no place for yet
// (JetStream's "no suitable peers for placement") is asked for again;
// other refusals are returned at once.
func TestDoWaitsForPlacement(t *testing.T) {
	calls := 0
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := Do(ctx, func(context.Context) (int, error) {
		if calls++; calls < 3 {
			return 0, &jetstream.APIError{Code: 400, ErrorCode: clusterNoPeers, Description: "no suitable peers for placement"}
		}
		return 7, nil
	})
	if err != nil || v != 7 || calls != 3 {
		t.Fatalf("Do = %d, %v after %d calls; want 7 after 3", v, err, calls)
	}
	calls = 0
	_, err = Do(ctx, func(context.Context) (int, error) {
		calls++
		return 0, &jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use"}
	})
	if err == nil || calls != 1 {
		t.Fatalf("Do = %v after %d calls; want the error after 1", err, calls)
	}
}

// An unanswered request is made again until one is answered.
func TestDoRetriesTimeouts(t *testing.T) {
	calls := 0
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := Do(ctx, func(context.Context) (string, error) {
		if calls++; calls < 2 {
			return "", context.DeadlineExceeded
		}
		return "ok", nil
	})
	if err != nil || v != "ok" || calls != 2 {
		t.Fatalf("Do = %q, %v after %d calls; want ok after 2", v, err, calls)
	}
}

package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/core/record"
)

// Work leaves the work stream once its runner acknowledged it: the
// stream is a work queue, so a controller does not keep (and cache) every
// execution it ever dispatched.
func TestWorkLeavesStreamOnceRun(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	st, err := e.ctl.js.Stream(ctx, WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Retention; got != jetstream.WorkQueuePolicy {
		t.Fatalf("work stream retention = %v, want work queue", got)
	}
	// Queued for a runner that is away: kept until it runs.
	ch, err := e.ctl.Dispatch(ctx, work(runner2, "wq-1"), true)
	if err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(ctx, t, st); n != 1 {
		t.Fatalf("work stream holds %d messages before the runner ran, want 1", n)
	}
	e.startRunner(t, runner2)
	awaitOutcome(t, ch)
	// The ack follows the outcome report; wait for the stream to empty.
	for n := streamMsgs(ctx, t, st); n != 0; n = streamMsgs(ctx, t, st) {
		select {
		case <-ctx.Done():
			t.Fatalf("work stream still holds %d messages after the runner ran", n)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// De-duplication by execution id still holds once the work is gone.
	if _, err := e.ctl.Dispatch(ctx, work(runner2, "wq-1"), false); !errors.Is(err, record.ErrAlreadyQueued) {
		t.Fatalf("a second dispatch of a run execution: %v, want record.ErrAlreadyQueued", err)
	}
	if n := streamMsgs(ctx, t, st); n != 0 {
		t.Errorf("a second dispatch of a run execution queued it again (%d messages)", n)
	}
}

// A work stream created with limits retention (by an earlier version) is
// kept as it is, even when its settings are updated: NATS cannot change a
// stream's retention to or from work-queue.
func TestExistingLimitsWorkStreamKept(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	js := e.ctl.js
	if err := js.DeleteStream(ctx, WorkStream); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: WorkStream, Subjects: []string{"postee.work.*"}, Storage: jetstream.FileStorage, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	st, err := ensureStream(ctx, js, jetstream.StreamConfig{Name: WorkStream, Subjects: []string{"postee.work.*"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, MaxAge: 2 * time.Hour})
	if err != nil {
		t.Fatalf("ensureStream on an existing limits stream: %v", err)
	}
	if c := st.CachedInfo().Config; c.Retention != jetstream.LimitsPolicy || c.MaxAge != 2*time.Hour {
		t.Errorf("stream retention %v, max age %v; want limits, 2h", c.Retention, c.MaxAge)
	}
}

func streamMsgs(ctx context.Context, t *testing.T, st jetstream.Stream) uint64 {
	t.Helper()
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// workLastSeq is the work stream's last sequence: how many messages it
// ever stored.
func workLastSeq(t *testing.T, e *env) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	st, err := e.ctl.js.Stream(ctx, WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// The work stream's duplicate window is WorkDuplicates, also on a stream
// an earlier version created with ten minutes.
func TestWorkStreamDuplicateWindow(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	window := func() time.Duration {
		st, err := e.ctl.js.Stream(ctx, WorkStream)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config.Duplicates
	}
	if d := window(); d != WorkDuplicates {
		t.Fatalf("duplicate window %s, want %s", d, WorkDuplicates)
	}
	st, err := e.ctl.js.Stream(ctx, WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Duplicates = 10 * time.Minute
	if _, err := e.ctl.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := e.ctl.ensureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	if d := window(); d != WorkDuplicates {
		t.Errorf("after a restart: duplicate window %s, want %s", d, WorkDuplicates)
	}
}

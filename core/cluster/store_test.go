package cluster

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postee-dev/postee/core/record"
)

func openTestStore(t *testing.T, path string) *runnerStore {
	t.Helper()
	s, err := openRunnerStore(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func report(i int) outgoing {
	return outgoing{Subject: fmt.Sprintf("postee.up.r.event-%d", i), MsgID: fmt.Sprintf("event:%d", i), Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
}

// drain pops the whole outbox, oldest first, batch reports at a time.
func drain(t *testing.T, s *runnerStore, batch int) []outgoing {
	t.Helper()
	var out []outgoing
	for {
		keys, reps := s.oldest(batch)
		if len(keys) != len(reps) || len(keys) > batch {
			t.Fatalf("oldest(%d) returned %d keys, %d reports", batch, len(keys), len(reps))
		}
		if len(keys) == 0 {
			return out
		}
		out = append(out, reps...)
		if err := s.remove(keys, reps, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunnerStoreDone(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "nested", "dir", "runner.db"))
	defer s.close()

	if _, ok := s.done("e1", "x1"); ok {
		t.Fatal("unknown execution reported done")
	}
	x := record.Execution{
		ID: "x1", EventID: "e1", Route: "r", Action: "a", Runner: "postee-runner-1", Status: record.StatusOK,
		Started: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Duration: 42 * time.Millisecond,
		Output: "out", Details: map[string]string{"k": "v"}, Err: "",
	}
	rep := (&Runner{s: RunnerSettings{Name: "postee-runner-1"}, store: s}).outcomeReport(x)
	if err := s.finish(x.EventID, x.ID, rep); err != nil {
		t.Fatal(err)
	}
	// The done record keeps the outcome as reported, to report it again.
	data, ok := s.done("e1", "x1")
	if !ok {
		t.Fatal("finished execution not done")
	}
	if !reflect.DeepEqual(data, rep.Data) {
		t.Errorf("done = %q, want the report's data %q", data, rep.Data)
	}
	got, err := decodeOutcome(data)
	if err != nil || !got.Started.Equal(x.Started) || got.Output != "out" || got.Details["k"] != "v" || got.Duration != x.Duration {
		t.Errorf("done outcome = %+v, %v", got, err)
	}
	// finish queued the outcome report in the same transaction.
	if n := s.pending(); n != 1 {
		t.Fatalf("pending = %d, want 1", n)
	}
	_, reps := s.oldest(10)
	if len(reps) != 1 {
		t.Fatalf("oldest = %+v", reps)
	}
	r := reps[0]
	if r.Subject != outcomeSubject("postee-runner-1") || r.MsgID != s.msgID("postee-runner-1", "outcome", "x1") {
		t.Fatalf("oldest = %+v", r)
	}
	sent, err := decodeOutcome(r.Data)
	if err != nil || sent.ID != "x1" {
		t.Fatalf("report data %s: %v", r.Data, err)
	}
	if len(drain(t, s, 1)) != 1 || s.pending() != 0 {
		t.Fatal("outbox not empty after remove")
	}
	// done survives the report's removal.
	if _, ok := s.done("e1", "x1"); !ok {
		t.Fatal("done record lost")
	}
}

func TestRunnerStoreOutboxOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runner.db")
	s := openTestStore(t, path)
	if keys, _ := s.oldest(1); len(keys) != 0 {
		t.Fatal("new outbox not empty")
	}
	if err := s.enqueue(report(1), report(2), report(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.finish("e4", "x4", report(4)); err != nil {
		t.Fatal(err)
	}
	if err := s.enqueue(report(5)); err != nil {
		t.Fatal(err)
	}
	// Send the first two, then stop.
	keys, reps := s.oldest(2)
	if !reflect.DeepEqual(reps, []outgoing{report(1), report(2)}) {
		t.Fatalf("oldest = %+v", reps)
	}
	if err := s.remove(keys, reps, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	// Reopen: the rest is there, in order, and new reports go after it.
	s = openTestStore(t, path)
	defer s.close()
	if n := s.pending(); n != 3 {
		t.Fatalf("pending after reopen = %d, want 3", n)
	}
	if _, ok := s.done("e4", "x4"); !ok {
		t.Fatal("done record lost on reopen")
	}
	if err := s.enqueue(report(6)); err != nil {
		t.Fatal(err)
	}
	got := drain(t, s, 2)
	want := []outgoing{report(3), report(4), report(5), report(6)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("outbox order after reopen:\n got %+v\nwant %+v", got, want)
	}
	// Past 255 entries the big-endian keys still sort in order.
	var many []outgoing
	for i := 0; i < 300; i++ {
		many = append(many, report(100+i))
	}
	if err := s.enqueue(many...); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, 256); !reflect.DeepEqual(got, many) {
		t.Fatal("outbox out of order past 255 entries")
	}
}

// A store written by an older postee (JSON records) is still read: its
// queued reports are sent, its done records stop redelivered work.
func TestRunnerStoreReadsJSONRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runner.db")
	s := openTestStore(t, path)
	old := record.Execution{ID: "old", EventID: "e", Route: "r", Action: "a", Output: "o", Started: time.Unix(0, 42)}
	err := s.db.Update(func(tx *bolt.Tx) error {
		rep, _ := json.Marshal(report(1))
		if err := tx.Bucket(outboxBucket).Put([]byte{0, 0, 0, 0, 0, 0, 0, 0}, rep); err != nil {
			return err
		}
		rec, _ := json.Marshal(doneRecord{At: time.Now(), Outcome: old})
		return tx.Bucket(doneBucket).Put([]byte("old"), rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path) // an earlier version's store
	defer s.close()
	if err := s.enqueue(report(2)); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, 10); !reflect.DeepEqual(got, []outgoing{report(1), report(2)}) {
		t.Fatalf("drained %+v", got)
	}
	data, ok := s.done("e", "old")
	if !ok {
		t.Fatal("a JSON done record is not done")
	}
	if got, err := decodeOutcome(data); err != nil || got.ID != "old" || got.Output != "o" || !got.Started.Equal(old.Started) {
		t.Fatalf("outcome of a JSON done record: %+v, %v", got, err)
	}
	s.forget(time.Now().Add(-time.Hour))
	if _, ok := s.done("e", "old"); !ok {
		t.Fatal("a recent JSON done record was forgotten")
	}
}

func TestRunnerStoreUnreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runner.db")
	s := openTestStore(t, path)
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(outboxBucket).Put([]byte{0, 0, 0, 0, 0, 0, 0, 0}, []byte("not json")); err != nil {
			return err
		}
		if err := tx.Bucket(doneByEventBucket).Put(doneKey("e", "bad"), []byte("not json")); err != nil {
			return err
		}
		return tx.Bucket(doneBucket).Put([]byte("bad-too"), []byte("not json"))
	})
	if err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path)
	defer s.close()
	if err := s.enqueue(report(1)); err != nil {
		t.Fatal(err)
	}
	// An unreadable report comes out empty (the send loop drops it) and
	// does not block the queue.
	got := drain(t, s, 1)
	if len(got) != 2 || got[0].Subject != "" || !reflect.DeepEqual(got[1], report(1)) {
		t.Fatalf("drained %+v", got)
	}
	for _, id := range []string{"bad", "bad-too"} {
		if _, ok := s.done("e", id); ok {
			t.Fatalf("unreadable done record %s reported done", id)
		}
	}
}

// eventIDAt is an event id of event.NewID's form for time t.
func eventIDAt(t time.Time, n int) string {
	return fmt.Sprintf("%012x%020x", t.UnixMilli(), n)
}

func TestRunnerStoreForget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runner.db")
	s := openTestStore(t, path)
	now := time.Now()
	// An earlier version's records, by execution id.
	legacy := map[string]time.Time{
		"old-1":  now.Add(-48 * time.Hour),
		"old-2":  now.Add(-25 * time.Hour),
		"recent": now.Add(-time.Hour),
	}
	for i := 0; i < 500; i++ { // many consecutive deletions, over several pages
		legacy[fmt.Sprintf("old-many-%03d", i)] = now.Add(-30 * time.Hour)
	}
	// Records by event: the event's time in its id, and when it finished.
	type rec struct{ event, finished time.Time }
	byEvent := map[string]rec{
		"old":       {now.Add(-30 * time.Hour), now.Add(-30 * time.Hour)},
		"event-old": {now.Add(-48 * time.Hour), now.Add(-time.Hour)}, // finished long after
		"recent":    {now.Add(-time.Hour), now.Add(-time.Hour)},
		"skewed":    {now.Add(-30 * time.Minute), now.Add(-26 * time.Hour)}, // the controller's clock ahead
	}
	for i := 0; i < 500; i++ {
		byEvent[fmt.Sprintf("old-many-%03d", i)] = rec{now.Add(-30 * time.Hour).Add(time.Duration(i) * time.Second), now.Add(-29 * time.Hour)}
	}
	keyOf := map[string][]byte{}
	n := 0
	for id, r := range byEvent {
		n++
		keyOf[id] = doneKey(eventIDAt(r.event, n), id)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for id, at := range legacy {
			v, _ := json.Marshal(doneRecord{At: at, Outcome: record.Execution{ID: id}})
			if err := tx.Bucket(doneBucket).Put([]byte(id), v); err != nil {
				return err
			}
		}
		if err := tx.Bucket(doneBucket).Put([]byte("garbage"), []byte("{")); err != nil {
			return err
		}
		for id, r := range byEvent {
			if err := tx.Bucket(doneByEventBucket).Put(keyOf[id], encodeDone(r.finished, []byte(id))); err != nil {
				return err
			}
		}
		// An event id of another form: time 0, judged by its record.
		for id, at := range map[string]time.Time{"odd-old": now.Add(-30 * time.Hour), "odd-recent": now} {
			if err := tx.Bucket(doneByEventBucket).Put(doneKey("odd", id), encodeDone(at, []byte(id))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path)
	defer s.close()
	fresh := eventIDAt(now, 0)
	if err := s.finish(fresh, "fresh", report(1)); err != nil {
		t.Fatal(err)
	}

	s.forget(now.Add(-24 * time.Hour))

	for id, want := range map[string]bool{"old-1": false, "old-2": false, "recent": true} {
		if _, ok := s.done("?", id); ok != want {
			t.Errorf("earlier version's done(%s) = %v, want %v", id, ok, want)
		}
	}
	if _, ok := s.done(fresh, "fresh"); !ok {
		t.Error("the fresh execution was forgotten")
	}
	var keys []string
	_ = s.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(doneBucket).ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil }); err != nil {
			return err
		}
		return tx.Bucket(doneByEventBucket).ForEach(func(k, v []byte) error {
			_, id, _ := decodeDone(v)
			keys = append(keys, "by event: "+string(id))
			return nil
		})
	})
	// In the order of their events; "skewed" is past the first event newer
	// than the cut, where the scan stops: kept until a later one.
	want := []string{"recent", "by event: odd-recent", "by event: event-old", "by event: recent", "by event: skewed", `by event: {"n":1}`}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("done records left = %q, want %q (unreadable ones are dropped too)", keys, want)
	}
	if !s.legacy.Load() {
		t.Error("the earlier version's records are no longer read while one is left")
	}
	// forget leaves the outbox alone.
	if n := s.pending(); n != 1 {
		t.Errorf("pending = %d, want 1", n)
	}
	s.forget(now.Add(time.Minute))
	if s.legacy.Load() {
		t.Error("the earlier version's records are still read once all are gone")
	}
}

// reopen closes s and opens the store at path again.
func reopen(t *testing.T, s *runnerStore, path string) *runnerStore {
	t.Helper()
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	return openTestStore(t, path)
}

// TestReportMsgIDs: a runner's report ids are stable across restarts (a
// report sent again is a duplicate) and differ between runners' stores, so
// no runner can compute another's and have JetStream drop its reports.
func TestReportMsgIDs(t *testing.T) {
	dir := t.TempDir()
	a, err := openRunnerStore(filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	first := a.msgID("r", "outcome", "x1")
	a.close()
	a, err = openRunnerStore(filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	b, err := openRunnerStore(filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if again := a.msgID("r", "outcome", "x1"); again != first {
		t.Errorf("id changed across a restart: %s, %s", first, again)
	}
	if other := b.msgID("r", "outcome", "x1"); other == first {
		t.Errorf("two stores derive the same id %s", first)
	}
	if a.msgID("r", "local", "x1") == first {
		t.Error("kinds share ids")
	}
}

// The reports remove keeps are listed once sent long enough ago, oldest
// first, across a reopen, until dropped.
func TestRunnerStoreKeepsSentReports(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runner.db")
	s := openTestStore(t, path)
	if err := s.enqueue(report(1), report(2), report(3), report(4)); err != nil {
		t.Fatal(err)
	}
	odd := func(o outgoing) bool { return o.MsgID == "event:1" || o.MsgID == "event:3" }
	t0 := time.Unix(1000, 0)
	keys, reps := s.oldest(2)
	if err := s.remove(keys, reps, odd, t0); err != nil {
		t.Fatal(err)
	}
	keys, reps = s.oldest(2)
	if err := s.remove(keys, reps, odd, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.oldest(1); len(keys) != 0 {
		t.Fatal("outbox not empty")
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, path)
	defer s.close()
	for _, c := range []struct {
		before time.Time
		want   []outgoing
	}{
		{t0, nil},
		{t0.Add(time.Second), []outgoing{report(1)}},
		{t0.Add(time.Hour), []outgoing{report(1), report(3)}},
	} {
		if _, got := s.sentBefore(c.before, 10); !reflect.DeepEqual(got, c.want) {
			t.Errorf("sentBefore(%s) = %+v, want %+v", c.before, got, c.want)
		}
	}
	keys, _ = s.sentBefore(t0.Add(time.Second), 10)
	if err := s.dropSent(keys); err != nil {
		t.Fatal(err)
	}
	if _, got := s.sentBefore(t0.Add(time.Hour), 10); !reflect.DeepEqual(got, []outgoing{report(3)}) {
		t.Errorf("after the drop: %+v", got)
	}
}

package store

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// onDisk reads what the file holds, not what is pending in memory.
func onDisk(t *testing.T, s *Store, bucket []byte, key string) bool {
	t.Helper()
	found := false
	if err := s.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucket).Get([]byte(key)) != nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return found
}

// openSlow opens a store whose flush loop waits an hour, so that only
// Accept, Flush and Close write the pending records.
func openSlow(t *testing.T, path string) *Store {
	t.Helper()
	s := open(t, path)
	s.g.mu.Lock()
	s.g.interval = time.Hour
	s.g.mu.Unlock()
	return s
}

func TestGroupCommitRidesWithAccept(t *testing.T) {
	s := openSlow(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	at := time.Unix(1700000000, 0)
	if err := s.Accept(Accepted{ID: "e1", Received: at, Event: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDone("x1", at); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish("e1"); err != nil {
		t.Fatal(err)
	}
	// Pending: not on disk yet, but IsDone already knows.
	if !onDisk(t, s, inboxBucket, "e1") || onDisk(t, s, execDoneBucket, "x1") {
		t.Fatal("MarkDone or Finish written at once; want them pending")
	}
	if !s.IsDone("x1") {
		t.Error("IsDone of a pending MarkDone = false")
	}
	// The next Accept's transaction writes them.
	if err := s.Accept(Accepted{ID: "e2", Received: at, Event: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if onDisk(t, s, inboxBucket, "e1") || !onDisk(t, s, execDoneBucket, "x1") || !onDisk(t, s, inboxBucket, "e2") {
		t.Fatal("the Accept did not write the pending records")
	}
	if s.pending() {
		t.Error("records still pending after the Accept committed them")
	}
}

func TestGroupCommitFlushesWithinInterval(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	flushed := make(chan struct{}, 1)
	s.g.mu.Lock()
	s.g.flushed = flushed
	s.g.mu.Unlock()
	at := time.Unix(1700000000, 0)
	if err := s.Accept(Accepted{ID: "e1", Received: at, Event: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.Finish("e1")
	select {
	case <-flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("no flush")
	}
	if d := time.Since(start); d < GroupCommitInterval/2 {
		t.Errorf("flushed after %v: want the records gathered for about %v", d, GroupCommitInterval)
	}
	if onDisk(t, s, inboxBucket, "e1") {
		t.Error("Finish not written by the flush")
	}
}

// An event's MarkDones that are still pending when it finishes are not
// written: with the event out of the inbox, no replay needs them.
func TestFinishDropsPendingMarkDones(t *testing.T) {
	s := openSlow(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	at := time.Unix(1700000000, 0)
	for _, id := range []string{"e1", "e2"} {
		if err := s.Accept(Accepted{ID: id, Received: at, Event: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	s.MarkDoneOf("e1", "x1a", at)
	s.MarkDoneOf("e1", "x1b", at)
	s.MarkDoneOf("e2", "x2", at)
	s.Finish("e1")
	if s.IsDone("x1a") {
		t.Error("a dropped MarkDone still counts as done")
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if onDisk(t, s, execDoneBucket, "x1a") || onDisk(t, s, execDoneBucket, "x1b") || onDisk(t, s, inboxBucket, "e1") {
		t.Error("the finished event's MarkDones or inbox record were written")
	}
	if !onDisk(t, s, execDoneBucket, "x2") || !onDisk(t, s, inboxBucket, "e2") {
		t.Error("the unfinished event's MarkDone or inbox record is missing")
	}
}

// Close writes what is pending: a clean stop replays nothing.
func TestCloseWritesPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := openSlow(t, path)
	at := time.Unix(1700000000, 0)
	for _, id := range []string{"e1", "e2"} {
		if err := s.Accept(Accepted{ID: id, Received: at, Event: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	s.MarkDoneOf("e2", "x2", at)
	s.Finish("e1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	defer s.Close()
	got, err := s.Unfinished()
	if err != nil || len(got) != 1 || got[0].ID != "e2" {
		t.Fatalf("unfinished %+v %v, want e2 only", got, err)
	}
	if !s.IsDone("x2") {
		t.Error("MarkDone lost by Close")
	}
}

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

// inLog reads the inbox log's files as a restart would: the events not
// finished, and the executions done of each.
func inLog(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	s.log.mu.Lock()
	var seqs []uint64
	for _, seg := range s.log.segs {
		seqs = append(seqs, seg.seq)
	}
	s.log.mu.Unlock()
	l := &inboxLog{dir: s.log.dir, live: map[string]*logEntry{}, doneExec: map[string]*logEntry{}}
	for _, seq := range seqs {
		if err := l.load(seq, false); err != nil {
			t.Fatal(err)
		}
		defer l.segs[len(l.segs)-1].f.Close()
	}
	if len(l.damage) > 0 {
		t.Fatalf("damage: %v", l.damage)
	}
	out := map[string][]string{}
	for id, e := range l.live {
		out[id] = []string{}
		for _, d := range e.done {
			out[id] = append(out[id], d.exec)
		}
	}
	return out
}

func TestGroupCommitRidesWithAccept(t *testing.T) {
	s := openSlow(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	at := time.Unix(1700000000, 0)
	for _, id := range []string{"e1", "e2"} {
		if err := s.Accept(Accepted{ID: id, Received: at, Event: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkDoneOf("e2", "x2", at); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish("e1"); err != nil {
		t.Fatal(err)
	}
	// Pending: not on disk yet, but IsDone already knows.
	if got := inLog(t, s); len(got) != 2 || len(got["e2"]) != 0 {
		t.Fatalf("on disk %v: want e1 and e2, nothing done (MarkDone and Finish pending)", got)
	}
	if !s.IsDone("x2") {
		t.Error("IsDone of a pending MarkDone = false")
	}
	// The next Accept's write takes them along.
	if err := s.Accept(Accepted{ID: "e3", Received: at, Event: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if got := inLog(t, s); len(got) != 2 || len(got["e2"]) != 1 || got["e3"] == nil {
		t.Fatalf("on disk %v: want e2 (x2 done) and e3", got)
	}
	if s.pending() {
		t.Error("records still pending after the Accept wrote them")
	}
}

// A MarkDone of no event in the log (a kept batch's execution) waits for
// the bbolt flush.
func TestGroupCommitBoltRecords(t *testing.T) {
	s := openSlow(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	at := time.Unix(1700000000, 0)
	if err := s.MarkDone("x1", at); err != nil {
		t.Fatal(err)
	}
	if onDisk(t, s, execDoneBucket, "x1") || !s.IsDone("x1") {
		t.Fatal("want x1 pending, and done")
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if !onDisk(t, s, execDoneBucket, "x1") || s.pending() {
		t.Fatal("Flush did not write x1")
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
	if got := inLog(t, s); len(got) != 0 {
		t.Errorf("on disk %v: Finish not written by the flush", got)
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
	if onDisk(t, s, execDoneBucket, "x1a") || onDisk(t, s, execDoneBucket, "x1b") || onDisk(t, s, execDoneBucket, "x2") {
		t.Error("an event's MarkDone went to the bbolt file")
	}
	if got := inLog(t, s); len(got) != 1 || len(got["e2"]) != 1 || got["e2"][0] != "x2" {
		t.Errorf("on disk %v, want e2 with x2 done only", got)
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

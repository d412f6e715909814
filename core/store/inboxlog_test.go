package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func accept(t *testing.T, s *Store, id string) {
	t.Helper()
	if err := s.Accept(Accepted{ID: id, Received: time.Unix(1700000000, 0), Route: "r", Event: []byte(`{"id":"` + id + `"}`)}); err != nil {
		t.Fatal(err)
	}
}

func unfinishedIDs(t *testing.T, s *Store) []string {
	t.Helper()
	got, err := s.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, a := range got {
		if string(a.Event) != `{"id":"`+a.ID+`"}` {
			t.Fatalf("event %s came back as %s", a.ID, a.Event)
		}
		ids = append(ids, a.ID)
	}
	return ids
}

func segments(t *testing.T, dbPath string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dbPath+LogSuffix, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// A crash in the middle of a write leaves part of a record at the end of
// the last segment: it was never acknowledged, and is cut off.
func TestInboxLogTornTail(t *testing.T) {
	for _, cut := range []int{1, 5, 9, 12} { // into the header, the crc, the kind, the payload
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			s := open(t, path)
			accept(t, s, "e1")
			accept(t, s, "e2")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			seg := segments(t, path)[0]
			st, _ := os.Stat(seg)
			full := st.Size()
			// A third record, cut short.
			f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
			rec := appendRecord(nil, recAccept, func(b []byte) []byte {
				return appendAccepted(b, Accepted{ID: "e3", Event: []byte(`{"id":"e3"}`)})
			})
			f.Write(rec[:cut])
			f.Close()

			s = open(t, path)
			if got := unfinishedIDs(t, s); !slices.Equal(got, []string{"e1", "e2"}) {
				t.Fatalf("unfinished %v", got)
			}
			if st, _ := os.Stat(seg); st.Size() != full {
				t.Fatalf("segment is %d bytes, want the torn record cut off (%d)", st.Size(), full)
			}
			if d := s.LogDamage(); d != nil {
				t.Errorf("a torn tail is not damage: %v", d)
			}
			accept(t, s, "e4") // written where the torn record was
			s.Close()
			s = open(t, path)
			defer s.Close()
			if got := unfinishedIDs(t, s); !slices.Equal(got, []string{"e1", "e2", "e4"}) {
				t.Fatalf("unfinished after the next write %v", got)
			}
		})
	}
}

// A record that does not check out in a segment that is not the last is
// damage: the records before it are replayed, and LogDamage says where.
func TestInboxLogDamageReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	s.log.segMax = 1 // every write starts a new segment
	for _, id := range []string{"e1", "e2", "e3"} {
		accept(t, s, id)
	}
	s.Close()
	segs := segments(t, path)
	if len(segs) != 3 {
		t.Fatalf("segments %v", segs)
	}
	b, _ := os.ReadFile(segs[1])
	b[len(b)-2] ^= 0xff // e2's record
	os.WriteFile(segs[1], b, 0o600)

	s = open(t, path)
	defer s.Close()
	if got := unfinishedIDs(t, s); !slices.Equal(got, []string{"e1", "e3"}) {
		t.Fatalf("unfinished %v", got)
	}
	d := s.LogDamage()
	if len(d) != 1 || !strings.Contains(d[0], filepath.Base(segs[1])) || !strings.Contains(d[0], "checksum") {
		t.Fatalf("damage %v", d)
	}
}

// Segments whose events all finished are deleted, oldest first; an event
// that stays unfinished is copied forward so that it does not keep every
// later segment on disk.
func TestInboxLogSegmentsReclaimedAndCopiedForward(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	s.log.segMax = 1
	accept(t, s, "a-stuck")
	if err := s.MarkDoneOf("a-stuck", "x-stuck", time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		id := fmt.Sprintf("b%02d", i)
		accept(t, s, id)
		s.Finish(id)
	}
	accept(t, s, "c-last") // writes the last Finish
	if n := len(segments(t, path)); n > maxClosedSegments+2 {
		t.Fatalf("%d segments on disk, want at most %d", n, maxClosedSegments+2)
	}
	s.Close()
	s = open(t, path)
	defer s.Close()
	if got := unfinishedIDs(t, s); !slices.Equal(got, []string{"a-stuck", "c-last"}) {
		t.Fatalf("unfinished %v", got)
	}
	if !s.IsDone("x-stuck") {
		t.Error("the execution done of the event copied forward was lost")
	}
	s.Finish("a-stuck")
	s.Finish("c-last")
	accept(t, s, "d")
	s.Finish("d")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(segments(t, path)); n > 2 {
		t.Errorf("%d segments left with every event finished", n)
	}
}

// Events an older version accepted into the bbolt inbox are replayed and
// finished from there.
func TestInboxLogReadsBoltInbox(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	old := Accepted{ID: "0001", Received: time.Unix(1, 0), Event: []byte(`{"id":"0001"}`)}
	batch := Accepted{ID: BatchPrefix + "x", Received: time.Unix(1, 0), Event: []byte(`{"id":"` + BatchPrefix + `x"}`)}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		tx.Bucket(inboxBucket).Put([]byte(old.ID), encodeAccepted(old))
		return tx.Bucket(inboxBucket).Put([]byte(batch.ID), encodeAccepted(batch))
	}); err != nil {
		t.Fatal(err)
	}
	accept(t, s, "0000")
	accept(t, s, "0002")
	if got := unfinishedIDs(t, s); !slices.Equal(got, []string{"0000", "0001", "0002", batch.ID}) {
		t.Fatalf("unfinished %v: want the events by id, then the batch", got)
	}
	s.Finish("0001")
	s.Finish(batch.ID)
	s.Close()
	s = open(t, path)
	defer s.Close()
	if got := unfinishedIDs(t, s); !slices.Equal(got, []string{"0000", "0002"}) {
		t.Fatalf("unfinished %v", got)
	}
}

// A write that fails fails its Accepts (no 2xx for them) and nothing
// else: the next write goes to a new segment.
func TestInboxLogWriteFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	accept(t, s, "e1")
	s.log.mu.Lock()
	s.log.segs[len(s.log.segs)-1].f.Close() // the next write fails
	s.log.mu.Unlock()
	if err := s.Accept(Accepted{ID: "e2", Event: []byte(`{"id":"e2"}`)}); err == nil || !strings.Contains(err.Error(), "inbox log") {
		t.Fatalf("Accept on a failing disk = %v", err)
	}
	accept(t, s, "e3")
	if got := unfinishedIDs(t, s); !slices.Equal(got, []string{"e3"}) {
		// e1 is in the segment whose handle the test closed.
		if !slices.Equal(got, []string{"e1", "e3"}) {
			t.Fatalf("unfinished %v", got)
		}
	}
	s.Close()
	s = open(t, path)
	defer s.Close()
	if got := unfinishedIDs(t, s); !slices.Equal(got, []string{"e1", "e3"}) {
		t.Fatalf("unfinished after a restart %v", got)
	}
}

// Concurrent Accepts share writes; whatever was acknowledged and not
// finished comes back after a restart, and nothing else.
func TestInboxLogConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	s.log.segMax = 4 << 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	var kept []string
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				id := fmt.Sprintf("%02d-%03d", g, i)
				if err := s.Accept(Accepted{ID: id, Event: []byte(`{"id":"` + id + `"}`)}); err != nil {
					t.Error(err)
					return
				}
				s.MarkDoneOf(id, "x"+id, time.Unix(1, 0))
				if i%7 == 0 {
					mu.Lock()
					kept = append(kept, id)
					mu.Unlock()
					continue
				}
				s.Finish(id)
			}
		}()
	}
	wg.Wait()
	s.Close()
	s = open(t, path)
	defer s.Close()
	slices.Sort(kept)
	if got := unfinishedIDs(t, s); !slices.Equal(got, kept) {
		t.Fatalf("unfinished %v\nwant %v", got, kept)
	}
	for _, id := range kept {
		if !s.IsDone("x" + id) {
			t.Fatalf("x%s not done", id)
		}
	}
	if s.IsDone("x00-001") {
		t.Error("an execution of a finished event still counts as done")
	}
}

// The Accepts that arrive while the writer copies a long-lived event
// forward are written with the copies, and return.
func TestInboxLogAcceptsDuringCopyForward(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	s.log.segMax = 1 // every write starts a segment: a copy forward every few writes
	s.log.gather = 0 // write at once: later Accepts gather meanwhile
	accept(t, s, "a-stuck")
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 100 {
					id := fmt.Sprintf("b%d-%03d", g, i)
					if err := s.Accept(Accepted{ID: id, Event: []byte(`{}`)}); err != nil {
						t.Error(err)
						return
					}
					s.Finish(id)
				}
			}()
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Accepts still waiting after the copies forward")
	}
	if got := unfinishedIDs(t, s); !slices.Equal(got, []string{"a-stuck"}) {
		t.Fatalf("unfinished %v", got)
	}
}

// What is recorded about an event between Begin and the end of its write
// (an execution done, the event finished) comes after it in the log, in
// the same write or a later one; a write that fails leaves no trace of its
// event, whatever was recorded about it.
func TestInboxLogBeginThenRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	begin := func(id string) func() error {
		t.Helper()
		wait, err := s.Begin(Accepted{ID: id, Received: time.Unix(1700000000, 0), Route: "r", Event: []byte(`{"id":"` + id + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		return wait
	}
	w1, w2 := begin("e1"), begin("e2")
	if err := s.MarkDoneOf("e1", "x1", time.Unix(1700000001, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish("e2"); err != nil {
		t.Fatal(err)
	}
	if err := w1(); err != nil {
		t.Fatal(err)
	}
	if err := w2(); err != nil {
		t.Fatal(err)
	}

	s.log.mu.Lock()
	s.log.segs[len(s.log.segs)-1].f.Close() // the next write fails
	s.log.mu.Unlock()
	w3 := begin("e3")
	if err := s.MarkDoneOf("e3", "x3", time.Unix(1700000001, 0)); err != nil {
		t.Fatal(err)
	}
	if err := w3(); err == nil {
		t.Fatal("the write of e3 on a failing disk succeeded")
	}
	if err := s.Finish("e3"); err != nil {
		t.Fatal(err)
	}
	if err := begin("e4")(); err != nil {
		t.Fatal(err)
	}
	s.Close() // fails on the handle the test closed

	s = open(t, path)
	defer s.Close()
	if got := unfinishedIDs(t, s); !slices.Equal(got, []string{"e1", "e4"}) {
		t.Fatalf("unfinished after a restart %v, want [e1 e4]", got)
	}
	if !s.IsDone("x1") || s.IsDone("x3") {
		t.Fatalf("done after a restart: x1 %v, x3 %v; want true, false", s.IsDone("x1"), s.IsDone("x3"))
	}
}

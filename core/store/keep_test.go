package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/record"
)

// A batch taken with AggregateKeep or DueKeep is in the inbox, written in
// the transaction that took it: a crash before it is sent (the store
// closed without Finish) leaves it there to replay; Finish forgets it.
func TestKeptBatchSurvivesACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	now := time.Unix(1000, 0)
	item := func(id string) Item { return Item{EventID: id, Message: record.Message{Title: "t" + id}} }
	if b, err := s.AggregateKeep("count", item("e1"), 2, now, false); err != nil || b != nil {
		t.Fatalf("first: %v %v", b, err)
	}
	full, err := s.AggregateKeep("count", item("e2"), 2, now, false)
	if err != nil || full == nil {
		t.Fatalf("second: %v %v", full, err)
	}
	if want := BatchID("count", []string{"e1", "e2"}); full.ID != want {
		t.Fatalf("batch id %q, want %q", full.ID, want)
	}
	if _, err := s.AggregateKeep("timed", item("e3"), 0, now, false); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueKeep(map[string]time.Duration{"timed": time.Minute, "count": 0}, now.Add(2*time.Minute))
	if err != nil || len(due) != 1 || due[0].ID != BatchID("timed", []string{"e3"}) {
		t.Fatalf("due: %+v %v", due, err)
	}
	// The crash: nothing was sent, nothing finished.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	defer s.Close()
	list, err := s.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range list {
		if !IsBatch(a.ID) {
			t.Errorf("record %s is not a batch", a.ID)
			continue
		}
		b, err := DecodeBatch(a)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range b.Items {
			ids = append(ids, it.EventID+"/"+it.Message.Title)
		}
		got[b.ID] = fmt.Sprint(b.Route, ids, b.First.Equal(now))
	}
	want := map[string]string{full.ID: "count[e1/te1 e2/te2] true", due[0].ID: "timed[e3/te3] true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kept after the crash: %v, want %v", got, want)
	}
	// Nothing is pending any more: the batches were taken.
	if again, err := s.DueKeep(map[string]time.Duration{"timed": time.Second, "count": time.Second}, now.Add(time.Hour)); err != nil || len(again) != 0 {
		t.Fatalf("taken twice: %+v %v", again, err)
	}

	// A replayed event whose item was added before (it is in a kept
	// batch, or still pending) is not added again; a new event is.
	if b, err := s.AggregateKeep("count", item("e2"), 2, now, true); err != nil || b != nil {
		t.Fatalf("replayed e2: %v %v", b, err)
	}
	if b, err := s.AggregateKeep("count", item("e4"), 2, now, true); err != nil || b != nil {
		t.Fatalf("replayed e4: %v %v", b, err)
	}
	if b, err := s.AggregateKeep("count", item("e4"), 2, now, true); err != nil || b != nil {
		t.Fatalf("replayed e4 twice: %v %v", b, err)
	}
	if b, err := s.AggregateKeep("count", item("e5"), 2, now, false); err != nil || b == nil || b.ID != BatchID("count", []string{"e4", "e5"}) {
		t.Fatalf("e5: %+v %v", b, err)
	}

	for _, id := range []string{full.ID, due[0].ID} {
		if err := s.Finish(id); err != nil {
			t.Fatal(err)
		}
	}
	if list, err = s.Unfinished(); err != nil || len(list) != 1 || list[0].ID != BatchID("count", []string{"e4", "e5"}) {
		t.Fatalf("after Finish: %+v %v", list, err)
	}
	// Nor after its batch was sent and finished.
	if b, err := s.AggregateKeep("count", item("e1"), 1, now, true); err != nil || b != nil {
		t.Fatalf("replayed e1 after its batch finished: %+v %v", b, err)
	}
	if due, err := s.Due(map[string]time.Duration{"count": time.Nanosecond}, now.Add(time.Hour)); err != nil || len(due) != 0 {
		t.Fatalf("pending: %+v %v", due, err)
	}
}

// Aggregate and Due (an engine that is not durable) keep nothing.
func TestPlainAggregateKeepsNothing(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	now := time.Unix(1000, 0)
	for i := 0; i < 2; i++ {
		if _, err := s.Aggregate("r", Item{EventID: fmt.Sprint(i)}, 2, now); err != nil {
			t.Fatal(err)
		}
	}
	if list, err := s.Unfinished(); err != nil || len(list) != 0 {
		t.Fatalf("unfinished: %+v %v", list, err)
	}
}

func TestDecodeBatchRefusesWhatItDidNotWrite(t *testing.T) {
	for _, body := range []string{`{`, `{"route":"r","items":[]}`, `{"items":[{"event_id":"e"}]}`} {
		if _, err := DecodeBatch(Accepted{ID: BatchPrefix + "x", Event: []byte(body)}); err == nil {
			t.Errorf("%s: decoded", body)
		}
	}
}

package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/record"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSeenScopedByRouteWithExpiry(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	now := time.Unix(1000, 0)
	steps := []struct {
		route, key string
		ttl        time.Duration
		at         time.Time
		want       bool
	}{
		{"r1", "k", time.Minute, now, false},
		{"r1", "k", time.Minute, now.Add(30 * time.Second), true},
		{"r2", "k", time.Minute, now.Add(30 * time.Second), false}, // another route
		{"r1", "k", time.Minute, now.Add(61 * time.Second), false}, // expired: recorded again
		{"r1", "k", time.Minute, now.Add(90 * time.Second), true},
		{"r3", "forever", 0, now, false},
		{"r3", "forever", 0, now.Add(1000 * time.Hour), true},
	}
	for i, st := range steps {
		got, err := s.Seen(st.route, st.key, st.ttl, st.at)
		if err != nil || got != st.want {
			t.Fatalf("step %d: Seen = %v, %v; want %v", i, got, err, st.want)
		}
	}
	n, err := s.Prune(now.Add(10 * time.Hour))
	if err != nil || n != 2 { // r1/k and r2/k expired; r3 never does
		t.Fatalf("Prune = %d, %v", n, err)
	}
}

func TestAggregationByCountTimeAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	now := time.Unix(1000, 0)
	item := func(i int) Item { return Item{EventID: fmt.Sprint(i), Message: record.Message{Title: fmt.Sprint(i)}} }
	for i := 0; i < 2; i++ {
		if b, err := s.Aggregate("r", item(i), 3, now); err != nil || b != nil {
			t.Fatalf("item %d: %v %v", i, b, err)
		}
	}
	// Restart: pending items survive.
	s.Close()
	s = open(t, path)
	defer s.Close()
	b, err := s.Aggregate("r", item(2), 3, now.Add(time.Second))
	if err != nil || b == nil || len(b.Items) != 3 || b.Items[0].EventID != "0" || b.Items[2].EventID != "2" || !b.First.Equal(now) {
		t.Fatalf("third item: %+v %v", b, err)
	}
	// By time: one item, then due after the timeout only.
	if b, _ := s.Aggregate("t", item(9), 0, now); b != nil {
		t.Fatal("no count limit")
	}
	timeouts := map[string]time.Duration{"t": time.Minute, "r": time.Minute}
	if due, _ := s.Due(timeouts, now.Add(30*time.Second)); len(due) != 0 {
		t.Fatalf("due too early: %+v", due)
	}
	due, err := s.Due(timeouts, now.Add(61*time.Second))
	if err != nil || len(due) != 1 || due[0].Route != "t" || len(due[0].Items) != 1 {
		t.Fatalf("due: %+v %v", due, err)
	}
	if due, _ := s.Due(timeouts, now.Add(time.Hour)); len(due) != 0 {
		t.Fatalf("flushed twice: %+v", due)
	}
}

func TestShrink(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	for i := 0; i < 5000; i++ {
		if _, err := s.Seen("r", fmt.Sprintf("key-%06d-%s", i, "padding-padding-padding-padding"), 0, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := s.Size()
	n, err := s.Shrink(before / 4)
	after, _ := s.Size()
	if err != nil || n == 0 || after > before/4 {
		t.Fatalf("Shrink deleted %d (%v): %d → %d bytes", n, err, before, after)
	}
}

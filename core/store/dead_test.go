package store

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func deadIDs(t *testing.T, s *Store) []string {
	t.Helper()
	ds, err := s.DeadLetters()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ExecutionID)
	}
	return ids
}

// TestDeadLetterBounds: dead letters are bounded by count and bytes; the
// oldest are dropped and counted.
func TestDeadLetterBounds(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dl := func(i int, size int) DeadLetter {
		return DeadLetter{ExecutionID: fmt.Sprintf("x%d", i), At: base.Add(time.Duration(i) * time.Second),
			Event: []byte(`{"pad":"` + strings.Repeat("p", size) + `"}`)}
	}
	t.Run("count", func(t *testing.T) {
		s, err := Open(filepath.Join(t.TempDir(), "db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.SetDeadLetterLimits(3, 0)
		for _, i := range []int{1, 2, 3, 4, 5} {
			if err := s.PutDeadLetter(dl(i, 10)); err != nil {
				t.Fatal(err)
			}
		}
		// Replacing one does not count twice.
		if err := s.PutDeadLetter(dl(5, 10)); err != nil {
			t.Fatal(err)
		}
		if ids := deadIDs(t, s); !slices.Equal(ids, []string{"x3", "x4", "x5"}) {
			t.Fatalf("kept %v", ids)
		}
		if n := s.DeadLettersDropped(); n != 2 {
			t.Fatalf("dropped %d", n)
		}
		if err := s.DeleteDeadLetter("x4"); err != nil {
			t.Fatal(err)
		}
		if err := s.PutDeadLetter(dl(6, 10)); err != nil {
			t.Fatal(err)
		}
		if ids := deadIDs(t, s); !slices.Equal(ids, []string{"x3", "x5", "x6"}) || s.DeadLettersDropped() != 2 {
			t.Fatalf("after a delete: kept %v, dropped %d", ids, s.DeadLettersDropped())
		}
	})
	t.Run("bytes", func(t *testing.T) {
		s, err := Open(filepath.Join(t.TempDir(), "db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.SetDeadLetterLimits(0, 3000)
		for i := 1; i <= 4; i++ {
			if err := s.PutDeadLetter(dl(i, 1000)); err != nil {
				t.Fatal(err)
			}
		}
		if ids := deadIDs(t, s); !slices.Equal(ids, []string{"x3", "x4"}) {
			t.Fatalf("kept %v", ids)
		}
	})
	t.Run("output clipped", func(t *testing.T) {
		s, err := Open(filepath.Join(t.TempDir(), "db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		d := dl(1, 1)
		d.Output, d.Error = strings.Repeat("o", 1<<20), strings.Repeat("e", 1<<20)
		if err := s.PutDeadLetter(d); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetDeadLetter("x1")
		if len(got.Output) > MaxDeadLetterOutput || len(got.Error) > MaxDeadLetterOutput {
			t.Fatalf("output %d, error %d bytes", len(got.Output), len(got.Error))
		}
	})
	t.Run("page", func(t *testing.T) {
		s, err := Open(filepath.Join(t.TempDir(), "db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for i := 1; i <= 5; i++ {
			_ = s.PutDeadLetter(dl(i, 1))
		}
		page, total, err := s.DeadLettersPage(1, 2)
		if err != nil || total != 5 || len(page) != 2 || page[0].ExecutionID != "x2" || page[1].ExecutionID != "x3" {
			t.Fatalf("page %+v, total %d, %v", page, total, err)
		}
	})
	t.Run("store written before the index", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "db")
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 3; i++ {
			_ = s.PutDeadLetter(dl(i, 1))
		}
		s.Close()
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(deadTimeBucket) })
		db.Close()
		s, err = Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.SetDeadLetterLimits(2, 0)
		if err := s.PutDeadLetter(dl(4, 1)); err != nil {
			t.Fatal(err)
		}
		if ids := deadIDs(t, s); !slices.Equal(ids, []string{"x3", "x4"}) {
			t.Fatalf("kept %v", ids)
		}
	})
}

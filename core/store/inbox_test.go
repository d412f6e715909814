package store

import (
	"path/filepath"
	"testing"
	"time"
)

func TestInboxRoundTripAndOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	at := time.Unix(1700000000, 123)
	for _, id := range []string{"02", "01", "03"} {
		if err := s.Accept(Accepted{ID: id, Received: at, Route: "r-" + id, Runner: "n", Origin: "", Event: []byte(`{"id":"` + id + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish("02"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path) // survives a restart
	defer s.Close()
	got, err := s.Unfinished()
	if err != nil || len(got) != 2 || got[0].ID != "01" || got[1].ID != "03" {
		t.Fatalf("unfinished %+v %v", got, err)
	}
	if a := got[1]; a.Route != "r-03" || a.Runner != "n" || string(a.Event) != `{"id":"03"}` || !a.Received.Equal(at) {
		t.Fatalf("record %+v", a)
	}
	if _, err := decodeAccepted([]byte{0x80}); err == nil {
		t.Fatal("a corrupt record must not decode")
	}
	if err := s.MarkDone("x", at); err != nil || !s.IsDone("x") || s.IsDone("y") {
		t.Fatal("done records")
	}
	if n, _ := s.PruneDone(at.Add(time.Second)); n != 1 || s.IsDone("x") {
		t.Fatalf("PruneDone = %d", n)
	}
}

package history

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
)

func TestLogKeepsTheLastAndReplacesByID(t *testing.T) {
	l := New(3)
	for i := 0; i < 5; i++ {
		l.Add(record.Execution{ID: fmt.Sprint(i), EventID: "e", Status: record.StatusDispatched})
	}
	l.Add(record.Execution{ID: "3", EventID: "e", Runner: "r1", Status: record.StatusOK})
	got := l.List(10, "", "")
	if len(got) != 3 || got[0].ID != "4" || got[1].ID != "3" || got[1].Status != "ok" || got[2].ID != "2" {
		t.Fatalf("list %+v", got)
	}
	if got := l.List(10, "", "r1"); len(got) != 1 || got[0].ID != "3" {
		t.Fatalf("by runner %+v", got)
	}
	w := httptest.NewRecorder()
	l.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/executions?limit=2", nil))
	var body struct{ Executions []record.Execution }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Executions) != 2 {
		t.Fatalf("handler: %v %s", err, w.Body)
	}
}

func TestEventsBounded(t *testing.T) {
	l := NewEvents(3, 25)
	for i := 0; i < 5; i++ {
		l.Add(&event.Event{ID: fmt.Sprint(i), Raw: []byte(`{"n":` + fmt.Sprint(i) + `}`)})
	}
	w := httptest.NewRecorder()
	l.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/events", nil))
	var body struct {
		Events []struct {
			ID    string
			Event map[string]int
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	// 3 by count, and 7 bytes each keeps them under 25 bytes.
	if len(body.Events) != 3 || body.Events[0].ID != "4" || body.Events[0].Event["n"] != 4 {
		t.Fatalf("events %+v", body.Events)
	}
	big := NewEvents(10, 10)
	big.Add(&event.Event{ID: "a", Raw: []byte(`{"x":"0123456789"}`)})
	big.Add(&event.Event{ID: "b", Raw: []byte(`{"x":"0123456789"}`)})
	if len(big.items) != 1 || big.items[0].ID != "b" {
		t.Fatalf("byte bound: %+v", big.items)
	}
}

// TestHandlerPages: the listing is served in pages of at most MaxPage.
func TestHandlerPages(t *testing.T) {
	l := New(5000)
	for i := range 1500 {
		l.Add(record.Execution{ID: strconv.Itoa(i)})
	}
	get := func(q string) (ids []string, next any) {
		w := httptest.NewRecorder()
		l.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/executions?"+q, nil))
		var body struct {
			Executions []record.Execution `json:"executions"`
			Next       any                `json:"next_offset"`
		}
		if err := json.NewDecoder(w.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		for _, x := range body.Executions {
			ids = append(ids, x.ID)
		}
		return ids, body.Next
	}
	if ids, _ := get("limit=100000"); len(ids) != MaxPage {
		t.Fatalf("limit=100000 gave %d", len(ids))
	}
	ids, next := get("limit=2&offset=3")
	if len(ids) != 2 || ids[0] != "1496" || ids[1] != "1495" || next != float64(5) {
		t.Fatalf("page %v, next %v", ids, next)
	}
	if ids, next := get("limit=10&offset=1495"); len(ids) != 5 || next != nil {
		t.Fatalf("last page %v, next %v", ids, next)
	}
}

// TestEventsPages: GET /events is served in pages.
func TestEventsPages(t *testing.T) {
	l := NewEvents(1000, 1<<20)
	for i := range 5 {
		l.Add(&event.Event{ID: strconv.Itoa(i), Raw: []byte(`{}`)})
	}
	w := httptest.NewRecorder()
	l.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/events?limit=2&offset=1", nil))
	var body struct {
		Events []struct {
			ID string `json:"id"`
		} `json:"events"`
		Next any `json:"next_offset"`
	}
	if err := json.NewDecoder(w.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if len(body.Events) != 2 || body.Events[0].ID != "3" || body.Events[1].ID != "2" || body.Next != float64(3) {
		t.Fatalf("page %+v", body)
	}
}

// A body read to its size is shared, not copied; one whose buffer grew
// well past its size is copied tight.
func TestEventsShareTightBodies(t *testing.T) {
	l := NewEvents(10, 1<<20)
	tight := []byte(`{"a": 1}`)
	loose := make([]byte, 8, 4096)
	copy(loose, `{"b": 2}`)
	l.Add(&event.Event{ID: "1", Raw: tight})
	l.Add(&event.Event{ID: "2", Raw: loose})
	if &l.items[0].Raw[0] != &tight[0] {
		t.Error("a tight body was copied")
	}
	if &l.items[1].Raw[0] == &loose[0] || cap(l.items[1].Raw) != len(loose) {
		t.Errorf("a loose body was kept with its %d bytes of capacity", cap(l.items[1].Raw))
	}
}

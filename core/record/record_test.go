package record

import (
	"encoding/json"
	"testing"
)

// TestMessageJSON: a stored message keeps the JSON names of the records
// written before, in both directions.
func TestMessageJSON(t *testing.T) {
	const stored = `{"Title":"t","Description":"d","URL":"u","Date":"1","Severity":"high","Summary":"s","Category":"c","Subcategory":"sc","AssignedTo":"a","AssignedGroup":"g"}`
	var m Message
	if err := json.Unmarshal([]byte(stored), &m); err != nil {
		t.Fatal(err)
	}
	want := Message{Title: "t", Description: "d", URL: "u", Date: "1", Severity: "high", Summary: "s", Category: "c", Subcategory: "sc", AssignedTo: "a", AssignedGroup: "g"}
	if m != want {
		t.Fatalf("decoded %+v", m)
	}
	if b, _ := json.Marshal(m); string(b) != stored {
		t.Fatalf("encoded %s", b)
	}
}

// TestExecutionID: ids are stored (finished executions, dead letters), so
// they never change for the same event, route and action.
func TestExecutionID(t *testing.T) {
	if got := ExecutionID("e", "r", "a"); got != "3a61fc100dc3ef0c06cccd3f915c88bf" {
		t.Fatalf("ExecutionID = %q", got)
	}
	// The separators keep the parts apart.
	if ExecutionID("ab", "c", "d") == ExecutionID("a", "bc", "d") {
		t.Fatal("ids of different parts collide")
	}
}

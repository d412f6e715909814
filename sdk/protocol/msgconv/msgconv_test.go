package msgconv

import (
	"testing"

	"github.com/postee-dev/postee/sdk"
)

func TestRoundTrip(t *testing.T) {
	m := sdk.Message{Title: "t", Description: "d", URL: "u", Date: "1", Severity: "s", Summary: "su",
		Category: "c", Subcategory: "sc", AssignedTo: "a", AssignedGroup: "g"}
	if got := FromPB(ToPB(m)); got != m {
		t.Fatalf("round trip: %+v", got)
	}
	if got := FromPB(nil); got != (sdk.Message{}) {
		t.Fatalf("nil: %+v", got)
	}
}

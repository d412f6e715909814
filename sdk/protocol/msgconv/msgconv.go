// Package msgconv converts the rendered message between its Go form
// (sdk.Message) and its protobuf form (actionpb.Message), for the host, the
// SDK's test harness and the controller/runner wire. (Package sdk converts
// on its own side: it cannot import this package, which imports it.)
package msgconv

import (
	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/protocol/actionpb"
)

// ToPB converts m for the wire.
func ToPB(m sdk.Message) *actionpb.Message {
	return &actionpb.Message{
		Title: m.Title, Description: m.Description, Url: m.URL, Date: m.Date, Severity: m.Severity,
		Summary: m.Summary, Category: m.Category, Subcategory: m.Subcategory,
		AssignedTo: m.AssignedTo, AssignedGroup: m.AssignedGroup,
	}
}

// FromPB converts m from the wire (nil: the zero message).
func FromPB(m *actionpb.Message) sdk.Message {
	return sdk.Message{
		Title: m.GetTitle(), Description: m.GetDescription(), URL: m.GetUrl(), Date: m.GetDate(),
		Severity: m.GetSeverity(), Summary: m.GetSummary(), Category: m.GetCategory(),
		Subcategory: m.GetSubcategory(), AssignedTo: m.GetAssignedTo(), AssignedGroup: m.GetAssignedGroup(),
	}
}

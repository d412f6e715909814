package sdk

import (
	"encoding/json"
	"strings"
)

// OwnerPlaceholder in a recipients or assignee list stands for the owners of
// the event's application scope (the event's `application_scope_owners`),
// as in the existing Postee.
const OwnerPlaceholder = "<%application_scope_owner%>"

// ScopeOwners returns the event's `application_scope_owners`: its string
// entries, in order. Anything else (no such key, not a list, entries that
// are not strings) gives what can be read and never fails.
func ScopeOwners(event []byte) []string {
	var e struct {
		Owners json.RawMessage `json:"application_scope_owners"`
	}
	if json.Unmarshal(event, &e) != nil || len(e.Owners) == 0 {
		return nil
	}
	var list []any
	if json.Unmarshal(e.Owners, &list) != nil {
		return nil
	}
	var out []string
	for _, v := range list {
		if s, ok := v.(string); ok && strings.TrimSpace(s) != "" {
			out = append(out, strings.TrimSpace(s))
		}
	}
	return out
}

// ExpandOwners returns list with every OwnerPlaceholder replaced by the
// event's scope owners (ScopeOwners); duplicates are dropped, order kept.
func ExpandOwners(list []string, event []byte) []string {
	var owners []string
	loaded := false
	seen := make(map[string]bool, len(list))
	out := make([]string, 0, len(list))
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, v := range list {
		if strings.TrimSpace(v) != OwnerPlaceholder {
			add(strings.TrimSpace(v))
			continue
		}
		if !loaded {
			owners, loaded = ScopeOwners(event), true
		}
		for _, o := range owners {
			add(o)
		}
	}
	return out
}

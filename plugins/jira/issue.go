package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf16"

	"github.com/postee-dev/postee/sdk"
)

const (
	// maxSummary and maxDescription are Jira's limits, in (UTF-16)
	// characters.
	maxSummary     = 255
	maxDescription = 32767
	// labelPrefix starts the label that marks an issue with its execution.
	labelPrefix = "postee-"
)

// issueFields builds the fields of the issue for ex; label is the
// execution's label when deduplication is on.
func (a *jira) issueFields(ctx context.Context, ex *sdk.Execution, m *metadata, d map[string]string) (map[string]any, string, error) {
	fields := maps.Clone(m.static)
	d["project"] = a.project
	d["issuetype"] = m.issueType.Name
	if m.priority != "" {
		d["priority"] = m.priority
	}
	if m.sprint != "" {
		d["sprint"] = m.sprint
	}

	summary := oneLine(ex.Message.Title)
	if summary == "" {
		summary = fmt.Sprintf("postee event %s (route %s)", ex.EventID, ex.Route)
	}
	summary, cut := cutUTF16(summary, maxSummary-1)
	if cut {
		summary += "…"
		d["summary_truncated"] = "true"
	}
	fields["summary"] = summary

	if _, ok := m.screen["description"]; ok && ex.Message.Description != "" {
		desc, cut := description(ex.Message.Description)
		if cut {
			d["description_truncated"] = "true"
		}
		fields["description"] = desc
	}

	if err := a.setAssignee(ctx, ex, m, fields, d); err != nil {
		return nil, "", err
	}

	label := ""
	if a.dedup && ex.ID != "" && m.labels {
		label = dedupLabel(ex.ID)
		var labels []string
		switch l := fields["labels"].(type) {
		case []string:
			labels = append(labels, l...)
		case []any:
			for _, x := range l {
				if s, ok := x.(string); ok {
					labels = append(labels, s)
				}
			}
		}
		fields["labels"] = append(labels, label)
		d["label"] = label
	}
	return fields, label, nil
}

// setAssignee assigns the issue to the first of the configured assignees
// (the user by default; <%application_scope_owner%> expanded) that is an
// active Jira user.
func (a *jira) setAssignee(ctx context.Context, ex *sdk.Execution, m *metadata, fields map[string]any, d map[string]string) error {
	if _, ok := m.screen["assignee"]; !ok {
		return nil
	}
	if _, ok := fields["assignee"]; ok { // set by unknowns
		return nil
	}
	list := a.assignee
	if len(list) == 0 && a.user != "" {
		list = []string{a.user}
	}
	candidates := sdk.ExpandOwners(list, ex.Event)
	for _, who := range candidates {
		ref, err := a.lookupUser(ctx, m.cloud, who)
		if err != nil && !sdk.IsPermanent(classify(err)) {
			return err
		}
		if err != nil {
			sdk.Logger().Warn("jira: cannot look up the assignee", "action", a.name, "assignee", who, "error", err.Error())
			continue
		}
		if ref != nil {
			fields["assignee"] = ref
			d["assignee"] = who
			return nil
		}
	}
	if len(candidates) > 0 {
		sdk.Logger().Warn("jira: no assignee is an active Jira user; the issue is left unassigned", "action", a.name, "assignees", strings.Join(candidates, ", "))
		d["assignee"] = ""
	}
	return nil
}

// search looks for the issue an earlier attempt created, by its label:
// GET rest/api/2/search/jql on Cloud (rest/api/2/search when missing),
// rest/api/2/search on Server. A search Jira refuses does not block the
// create.
func (a *jira) search(ctx context.Context, m *metadata, label string) (*issueRef, error) {
	q := url.Values{
		"jql":        {fmt.Sprintf("project = %q AND labels = %q", a.project, label)},
		"fields":     {"key"},
		"maxResults": {"1"},
	}
	var out struct {
		Issues []issueRef `json:"issues"`
	}
	path := "rest/api/2/search"
	if m.cloud {
		path = "rest/api/2/search/jql"
	}
	_, err := a.call(ctx, request{method: http.MethodGet, path: path, query: q}, &out)
	var ae *apiError
	if m.cloud && errors.As(err, &ae) && ae.status == http.StatusNotFound {
		_, err = a.call(ctx, request{method: http.MethodGet, path: "rest/api/2/search", query: q}, &out)
	}
	if err != nil {
		if sdk.IsPermanent(classify(err)) {
			sdk.Logger().Warn("jira: cannot search for an issue of an earlier attempt; creating one", "action", a.name, "error", err.Error())
			return nil, nil
		}
		return nil, err
	}
	for i := range out.Issues {
		if out.Issues[i].Key != "" {
			return &out.Issues[i], nil
		}
	}
	return nil, nil
}

// dedupLabel is the label of the issues of one execution.
func dedupLabel(id string) string {
	sum := sha256.Sum256([]byte(id))
	return labelPrefix + hex.EncodeToString(sum[:8])
}

// oneLine turns line breaks and tabs into spaces (Jira refuses a summary
// with line breaks) and trims.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', '\t', '\v', '\f', '\u2028', '\u2029':
			return ' '
		}
		return r
	}, s))
}

// cutUTF16 returns the longest prefix of s of at most n UTF-16 code units
// (what Jira counts), and whether s was cut.
func cutUTF16(s string, n int) (string, bool) {
	units := 0
	for i, r := range s {
		w := utf16.RuneLen(r)
		if w < 0 {
			w = 1
		}
		if units+w > n {
			return s[:i], true
		}
		units += w
	}
	return s, false
}

// lenUTF16 is the length of s in UTF-16 code units.
func lenUTF16(s string) int {
	n := 0
	for _, r := range s {
		if w := utf16.RuneLen(r); w > 0 {
			n += w
		} else {
			n++
		}
	}
	return n
}

// description returns the description cut to Jira's limit, with a note
// saying so at its end, and whether it was cut.
func description(s string) (string, bool) {
	s = strings.ToValidUTF8(s, "\uFFFD")
	total := lenUTF16(s)
	if total <= maxDescription {
		return s, false
	}
	// The note's length depends on the number it shows; reserve room for
	// the largest.
	noteFor := func(kept int) string {
		return fmt.Sprintf("\n\n----\n_postee: this description was cut to Jira's limit of %d characters; %d of %d characters are shown._",
			maxDescription, kept, total)
	}
	room := maxDescription - lenUTF16(noteFor(total)) - len("{noformat}\n{code}\n")
	kept, _ := cutUTF16(s, room)
	// End at a line break when one is near, not in the middle of a table
	// row.
	if i := strings.LastIndexByte(kept, '\n'); i > 0 && len(kept)-i < 2000 {
		kept = kept[:i]
	}
	// Close a preformatted block left open by the cut.
	if strings.Count(kept, "{noformat}")%2 == 1 {
		kept += "\n{noformat}"
	}
	if strings.Count(kept, "{code")%2 == 1 {
		kept += "\n{code}"
	}
	return kept + noteFor(lenUTF16(kept)), true
}

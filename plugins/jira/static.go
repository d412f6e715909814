package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/postee-dev/postee/sdk"
)

// resolveStatic builds the issue fields that do not depend on the event:
// project, issue type, priority, labels, versions, sprint and unknowns.
func (a *jira) resolveStatic(ctx context.Context, m *metadata) error {
	s := map[string]any{
		"project":   map[string]string{"key": a.project},
		"issuetype": map[string]string{"id": m.issueType.ID},
	}
	m.static = s
	_, m.labels = m.screen["labels"]

	if err := a.resolvePriority(ctx, m); err != nil {
		return err
	}
	if len(a.labels) > 0 {
		if !m.labels {
			return a.notOnScreen(m, "labels", "Labels")
		}
		s["labels"] = append([]string(nil), a.labels...)
	}
	for _, v := range []struct {
		key, id, name string
		list          []string
	}{
		{"fix-versions", "fixVersions", "Fix Version/s", a.fixVersions},
		{"affects-versions", "versions", "Affects Version/s", a.affectsVersions},
	} {
		if len(v.list) == 0 {
			continue
		}
		f, ok := m.screen[v.id]
		if !ok {
			return a.notOnScreen(m, v.key, v.name)
		}
		var out []map[string]string
		for _, name := range v.list {
			if len(f.AllowedValues) > 0 {
				if _, ok := findByName(f.AllowedValues, name, func(x allowed) (string, string) { return x.ID, x.Name }); !ok {
					return sdk.Permanentf("%s: project %s has no version %q (it has %s)", v.key, a.project, name, names(f.AllowedValues))
				}
			}
			out = append(out, map[string]string{"name": name})
		}
		s[v.id] = out
	}
	if err := a.resolveSprint(ctx, m); err != nil {
		return err
	}
	return a.resolveUnknowns(ctx, m)
}

func (a *jira) notOnScreen(m *metadata, key, name string) error {
	return sdk.Permanentf("%s: the create screen of issue type %s in project %s has no %s field", key, m.issueType.Name, a.project, name)
}

func names(list []allowed) string {
	var out []string
	for _, x := range list {
		n := x.Name
		if n == "" {
			n = x.Value
		}
		out = append(out, n)
	}
	if len(out) > 20 {
		out = append(out[:20], "…")
	}
	return strings.Join(out, ", ")
}

// resolvePriority sets the configured priority, or High (or the first
// priority) when none is configured and the screen has the field.
func (a *jira) resolvePriority(ctx context.Context, m *metadata) error {
	f, ok := m.screen["priority"]
	if !ok {
		if a.priority != "" {
			return a.notOnScreen(m, "priority", "Priority")
		}
		return nil
	}
	list := f.AllowedValues
	if len(list) == 0 {
		if _, err := a.call(ctx, request{method: http.MethodGet, path: "rest/api/2/priority"}, &list); err != nil {
			return err
		}
	}
	if len(list) == 0 {
		if a.priority != "" {
			return sdk.Permanentf("priority: Jira lists no priorities")
		}
		return nil
	}
	want := a.priority
	if want == "" {
		want = "High"
	}
	p, ok := findByName(list, want, func(x allowed) (string, string) { return x.ID, x.Name })
	switch {
	case !ok && a.priority != "":
		return sdk.Permanentf("priority: Jira has no priority %q (it has %s)", a.priority, names(list))
	case !ok:
		p = list[0]
	}
	m.static["priority"] = map[string]string{"id": p.ID}
	m.priority = p.Name
	return nil
}

// board is a Jira Software board.
type board struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// sprint is a sprint of a board.
type sprint struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"`
}

// resolveSprint puts issues into the board's active sprint (or the
// configured sprint) when the board is a scrum board and the screen has
// the Sprint field.
func (a *jira) resolveSprint(ctx context.Context, m *metadata) error {
	sprintField := ""
	for id, f := range m.screen {
		if f.Schema.Custom == sprintSchema {
			sprintField = id
		}
	}
	if sprintField == "" {
		if a.sprint != "" {
			return a.notOnScreen(m, "sprint", "Sprint")
		}
		return nil
	}
	boardName := a.board
	if boardName == "" {
		boardName = a.project + " board"
	}
	var boards []board
	err := a.paged(ctx, "rest/agile/1.0/board", url.Values{"projectKeyOrId": {a.project}}, func(l json.RawMessage) (int, error) {
		var more []board
		if len(l) > 0 && json.Unmarshal(l, &more) != nil {
			return 0, errors.New("GET " + a.target + " rest/agile/1.0/board: the answer is not a list of boards")
		}
		boards = append(boards, more...)
		return len(more), nil
	})
	var ae *apiError
	if errors.As(err, &ae) && (ae.status == http.StatusNotFound || ae.status == http.StatusForbidden) && a.sprint == "" {
		// No Jira Software, or no access to boards: no sprint.
		sdk.Logger().Warn("jira: cannot list boards; issues go to no sprint", "action", a.name, "error", err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	b, ok := findByName(boards, boardName, func(b board) (string, string) { return strconv.Itoa(b.ID), b.Name })
	if !ok {
		if a.sprint != "" || a.board != "" {
			var list []string
			for _, b := range boards {
				list = append(list, b.Name)
			}
			key := "board"
			if a.board == "" {
				key = "sprint"
			}
			return sdk.Permanentf("%s: project %s has no board %q (it has: %s)", key, a.project, boardName, strings.Join(list, ", "))
		}
		return nil
	}
	if b.Type != "scrum" {
		if a.sprint != "" {
			return sdk.Permanentf("sprint: board %q is a %s board, which has no sprints", b.Name, b.Type)
		}
		return nil
	}
	state := "active"
	if a.sprint != "" {
		state = "active,future"
	}
	var sprints []sprint
	path := "rest/agile/1.0/board/" + strconv.Itoa(b.ID) + "/sprint"
	err = a.paged(ctx, path, url.Values{"state": {state}}, func(l json.RawMessage) (int, error) {
		var more []sprint
		if len(l) > 0 && json.Unmarshal(l, &more) != nil {
			return 0, errors.New("GET " + a.target + " " + path + ": the answer is not a list of sprints")
		}
		sprints = append(sprints, more...)
		return len(more), nil
	})
	if err != nil {
		return err
	}
	var sp sprint
	switch {
	case a.sprint != "":
		sp, ok = findByName(sprints, a.sprint, func(s sprint) (string, string) { return strconv.Itoa(s.ID), s.Name })
		if !ok {
			return sdk.Permanentf("sprint: board %q has no active or future sprint %q", b.Name, a.sprint)
		}
	case len(sprints) == 0:
		return nil
	default:
		// Of several active sprints (parallel sprints), the first listed.
		sp = sprints[0]
	}
	if sp.ID <= 0 {
		return fmt.Errorf("GET %s %s: a sprint without an id", a.target, path)
	}
	m.static[sprintField] = sp.ID
	m.sprint = sp.Name
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/postee-dev/postee/sdk"
)

// resolveUnknowns adds the `unknowns` fields, each typed from the create
// metadata of its field.
func (a *jira) resolveUnknowns(ctx context.Context, m *metadata) error {
	keys := make([]string, 0, len(a.unknowns))
	for k := range a.unknowns {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, err := a.screenField(m, k)
		if err != nil {
			return err
		}
		switch f.FieldID {
		case "summary", "description", "project", "issuetype":
			return sdk.Permanentf("unknowns: %s is set by the action itself", k)
		}
		v, err := a.typed(ctx, m, f, a.unknowns[k])
		if err != nil {
			return sdk.Permanentf("unknowns: %s: %w", k, err)
		}
		m.static[f.FieldID] = v
	}
	return nil
}

// screenField finds a field of the create screen by id or name.
func (a *jira) screenField(m *metadata, key string) (createField, error) {
	if f, ok := m.screen[key]; ok {
		return f, nil
	}
	list := make([]createField, 0, len(m.screen))
	for _, f := range m.screen {
		list = append(list, f)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].FieldID < list[j].FieldID })
	if f, ok := findByName(list, key, func(f createField) (string, string) { return f.FieldID, f.Name }); ok {
		return f, nil
	}
	for id, f := range m.fields {
		if id == key || strings.EqualFold(f.Name, key) {
			return createField{}, sdk.Permanentf("unknowns: field %q (%s) is not on the create screen of issue type %s in project %s",
				key, id, m.issueType.Name, a.project)
		}
	}
	return createField{}, sdk.Permanentf("unknowns: Jira has no field %q", key)
}

// typed converts a configured value to what the field's type takes.
func (a *jira) typed(ctx context.Context, m *metadata, f createField, v unknownValue) (any, error) {
	sc := f.Schema
	one := strings.TrimSpace(strings.Join(v.items, ","))
	if sc.Type != "string" && (strings.HasPrefix(one, "{") || strings.HasPrefix(one, "[")) && json.Valid([]byte(one)) && !v.list {
		// The value as Jira takes it, for types postee does not know.
		return json.RawMessage(one), nil
	}
	items := v.items
	if !v.list {
		items = strings.Split(one, ",")
	}
	items = trimmed(items)
	if sc.Type == "array" {
		if sc.Custom == sprintSchema {
			return sprintID(one)
		}
		out := make([]any, 0, len(items))
		for _, it := range items {
			x, err := a.scalarOf(ctx, m, f, sc.Items, it)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	}
	if v.list && len(v.items) > 1 {
		return nil, sdk.Permanentf("field type %s takes one value, not a list", sc.Type)
	}
	if sc.Type == "string" || sc.Type == "any" {
		return strings.Join(v.items, ","), nil
	}
	return a.scalarOf(ctx, m, f, sc.Type, one)
}

func sprintID(s string) (any, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 {
		return nil, sdk.Permanentf("a Sprint field takes a sprint id (a number), not %q", s)
	}
	return n, nil
}

// scalarOf converts one value to Jira's form for type typ.
func (a *jira) scalarOf(ctx context.Context, m *metadata, f createField, typ, v string) (any, error) {
	switch typ {
	case "string", "any", "date", "datetime":
		return v, nil
	case "number":
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
			return nil, sdk.Permanentf("%q is not a number", v)
		}
		return json.Number(strconv.FormatFloat(n, 'f', -1, 64)), nil
	case "option", "option-with-child":
		if len(f.AllowedValues) > 0 {
			o, ok := findByName(f.AllowedValues, v, func(x allowed) (string, string) { return x.ID, x.Value })
			if !ok {
				return nil, sdk.Permanentf("%q is not one of its options (%s)", v, names(f.AllowedValues))
			}
			return map[string]string{"id": o.ID}, nil
		}
		return map[string]string{"value": v}, nil
	case "user":
		u, err := a.lookupUser(ctx, m.cloud, v)
		if err != nil {
			return nil, err
		}
		if u == nil {
			return nil, sdk.Permanentf("no active Jira user %q", v)
		}
		return u, nil
	case "version", "component", "group", "priority", "resolution", "securitylevel", "issuetype":
		if len(f.AllowedValues) > 0 {
			o, ok := findByName(f.AllowedValues, v, func(x allowed) (string, string) { return x.ID, x.Name })
			if !ok {
				return nil, sdk.Permanentf("%q is not one of its values (%s)", v, names(f.AllowedValues))
			}
			if o.ID != "" {
				return map[string]string{"id": o.ID}, nil
			}
		}
		return map[string]string{"name": v}, nil
	case "project":
		return map[string]string{"key": v}, nil
	}
	return nil, sdk.Permanentf("postee cannot fill fields of type %q; give the value as Jira's JSON", typ)
}

// jiraUser is an entry of GET rest/api/2/user/search.
type jiraUser struct {
	AccountID    string `json:"accountId"`
	Name         string `json:"name"`
	Key          string `json:"key"`
	EmailAddress string `json:"emailAddress"`
	DisplayName  string `json:"displayName"`
	Active       *bool  `json:"active"`
}

// userEntry is a cached user lookup; ref nil means no such user. done is
// closed when the lookup has ended (concurrent executions wait for one
// lookup); err is set when it failed, and the entry is then dropped.
type userEntry struct {
	done  chan struct{}
	ref   map[string]string
	err   error
	until int64 // unix nanoseconds
}

// lookupUser finds a user by e-mail, name or display name: on Cloud
// GET rest/api/2/user/search?query=, on Server ?username=. The answer is
// the reference an issue field takes ({"accountId"} on Cloud, {"name"} on
// Server), nil when there is no such active user. Answers are cached for
// the metadata TTL.
func (a *jira) lookupUser(ctx context.Context, cloud bool, who string) (map[string]string, error) {
	now := a.now()
	a.usersMu.Lock()
	e, ok := a.users[who]
	if ok {
		select {
		case <-e.done:
			if now.UnixNano() >= e.until {
				ok = false
			}
		default: // in flight
		}
	}
	if !ok {
		if len(a.users) >= maxUsers {
			clear(a.users)
		}
		e = &userEntry{done: make(chan struct{})}
		a.users[who] = e
		a.usersMu.Unlock()
		e.ref, e.err = a.searchUser(ctx, cloud, who)
		e.until = now.Add(metadataTTL).UnixNano()
		if e.err != nil {
			a.usersMu.Lock()
			if a.users[who] == e {
				delete(a.users, who)
			}
			a.usersMu.Unlock()
		}
		close(e.done)
		return e.ref, e.err
	}
	a.usersMu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	return e.ref, e.err
}

func (a *jira) searchUser(ctx context.Context, cloud bool, who string) (map[string]string, error) {
	q := url.Values{"maxResults": {"50"}}
	if cloud {
		q.Set("query", who)
	} else {
		q.Set("username", who)
	}
	var list []jiraUser
	if _, err := a.call(ctx, request{method: http.MethodGet, path: "rest/api/2/user/search", query: q}, &list); err != nil {
		return nil, err
	}
	var best *jiraUser
	for i := range list {
		u := &list[i]
		if u.Active != nil && !*u.Active {
			continue
		}
		if cloud && u.AccountID == "" || !cloud && u.Name == "" {
			continue
		}
		exact := strings.EqualFold(u.EmailAddress, who) || strings.EqualFold(u.Name, who) ||
			u.AccountID == who || u.Key == who || strings.EqualFold(u.DisplayName, who)
		if exact {
			best = u
			break
		}
		if best == nil {
			best = u
		}
	}
	switch {
	case best == nil:
		return nil, nil
	case cloud:
		return map[string]string{"accountId": best.AccountID}, nil
	}
	return map[string]string{"name": best.Name}, nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
)

// maxPages bounds the pages read from one paged Jira list.
const maxPages = 50

// schema is the type of a Jira field.
type schema struct {
	Type   string `json:"type"`
	Items  string `json:"items"`
	System string `json:"system"`
	Custom string `json:"custom"`
}

// sprintSchema is the custom type of Jira Software's Sprint field.
const sprintSchema = "com.pyxis.greenhopper.jira:gh-sprint"

// fieldInfo is one entry of GET rest/api/2/field.
type fieldInfo struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Custom bool   `json:"custom"`
	Schema schema `json:"schema"`
}

// allowed is an allowed value of a field in the create metadata.
type allowed struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// createField is a field of the create screen of the issue type.
type createField struct {
	FieldID       string    `json:"fieldId"`
	Key           string    `json:"key"`
	Name          string    `json:"name"`
	Required      bool      `json:"required"`
	Schema        schema    `json:"schema"`
	AllowedValues []allowed `json:"allowedValues"`
}

// issueType is an issue type of the project.
type issueType struct {
	ID      string                 `json:"id"`
	Name    string                 `json:"name"`
	Subtask bool                   `json:"subtask"`
	Fields  map[string]createField `json:"fields"` // old createmeta only
}

// metadata is what the action knows of the Jira instance, fetched once per
// TTL.
type metadata struct {
	fetched time.Time
	cloud   bool
	// fields are all fields by id (GET rest/api/2/field).
	fields map[string]fieldInfo
	// issueType is the issue type issues are created with; screen its
	// create screen's fields by id.
	issueType issueType
	screen    map[string]createField
	// static are the issue fields that are the same for every event.
	static map[string]any
	// sprint is the sprint issues go to ("" for none), for details.
	sprint   string
	priority string
	// labels is whether the Labels field is on the create screen.
	labels bool
	// err is a permanent problem of the configuration found with the
	// metadata: every execution fails with it until the metadata expire.
	err error
}

// names maps field ids to names, for messages.
func (m *metadata) names() map[string]string {
	out := make(map[string]string, len(m.screen))
	for id, f := range m.screen {
		out[id] = f.Name
	}
	return out
}

// metadata returns the cached metadata, fetching them when they are older
// than the TTL (or invalid). Concurrent executions wait for one fetch.
func (a *jira) metadata(ctx context.Context, forceRefresh bool) (*metadata, bool, error) {
	select {
	case a.metaLock <- struct{}{}:
	case <-ctx.Done():
		return nil, false, context.Cause(ctx)
	}
	defer func() { <-a.metaLock }()
	if m := a.meta; m != nil && !forceRefresh && a.now().Sub(m.fetched) < metadataTTL {
		return m, false, nil
	}
	m, err := a.fetchMetadata(ctx)
	if err != nil {
		return nil, true, err
	}
	a.meta = m
	return m, true, nil
}

// fetchMetadata reads everything an issue needs that does not depend on the
// event.
func (a *jira) fetchMetadata(ctx context.Context) (*metadata, error) {
	m := &metadata{fetched: a.now(), cloud: a.cloudHost}

	// serverInfo: Cloud or Server/Data Center. The version is not needed:
	// an empty versionNumbers is fine.
	var info struct {
		DeploymentType string `json:"deploymentType"`
		Version        string `json:"version"`
	}
	if _, err := a.call(ctx, request{method: http.MethodGet, path: "rest/api/2/serverInfo"}, &info); err != nil {
		return nil, err
	}
	if strings.EqualFold(info.DeploymentType, "Cloud") {
		m.cloud = true
	}

	var fields []fieldInfo
	if _, err := a.call(ctx, request{method: http.MethodGet, path: "rest/api/2/field"}, &fields); err != nil {
		return nil, err
	}
	m.fields = make(map[string]fieldInfo, len(fields))
	for _, f := range fields {
		if f.ID != "" {
			m.fields[f.ID] = f
		}
	}

	// A problem of the settings (no such issue type, priority, field...)
	// is kept with the metadata, so that every event does not ask Jira
	// again; Jira's own refusals (401, 404, ...) are not.
	err := a.fetchCreateMeta(ctx, m)
	if err == nil {
		err = a.resolveStatic(ctx, m)
	}
	if err != nil {
		if !sdk.IsPermanent(err) {
			return nil, err
		}
		m.err = err
	}
	return m, nil
}

// page is one page of a Jira list; the list is under one of several keys
// depending on the endpoint and on Cloud or Server.
type page struct {
	StartAt    int   `json:"startAt"`
	MaxResults int   `json:"maxResults"`
	Total      int   `json:"total"`
	IsLast     *bool `json:"isLast"`

	Values              json.RawMessage `json:"values"`
	IssueTypes          json.RawMessage `json:"issueTypes"`
	CreateMetaIssueType json.RawMessage `json:"createMetaIssueType"`
	Fields              json.RawMessage `json:"fields"`
	Results             json.RawMessage `json:"results"`
}

func (p *page) list() json.RawMessage {
	for _, l := range []json.RawMessage{p.Values, p.IssueTypes, p.CreateMetaIssueType, p.Fields, p.Results} {
		if len(l) > 0 && string(l) != "null" {
			return l
		}
	}
	return nil
}

// paged reads every page of a paged list, giving each page's list to add,
// which returns the number of entries it had.
func (a *jira) paged(ctx context.Context, path string, query url.Values, add func(json.RawMessage) (int, error)) error {
	start := 0
	for range maxPages {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("startAt", strconv.Itoa(start))
		var p page
		if _, err := a.call(ctx, request{method: http.MethodGet, path: path, query: q}, &p); err != nil {
			return err
		}
		n, err := add(p.list())
		if err != nil {
			return err
		}
		start += n
		// The last page: isLast says so, or (without isLast) the total is
		// reached or not given.
		last := n == 0
		if p.IsLast != nil {
			last = last || *p.IsLast
		} else {
			last = last || start >= p.Total
		}
		if last {
			return nil
		}
	}
	return nil
}

// fetchCreateMeta finds the issue type and the fields of its create
// screen, with the per-project endpoints of Jira 8.4+ and Cloud, or the
// single createmeta call of older Jira Server when those are missing.
func (a *jira) fetchCreateMeta(ctx context.Context, m *metadata) error {
	var types []issueType
	base := "rest/api/2/issue/createmeta/" + a.project + "/issuetypes"
	err := a.paged(ctx, base, nil, func(l json.RawMessage) (int, error) {
		var more []issueType
		if len(l) > 0 {
			if err := json.Unmarshal(l, &more); err != nil {
				return 0, errors.New("GET " + a.target + " " + base + ": the answer is not a list of issue types")
			}
		}
		types = append(types, more...)
		return len(more), nil
	})
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusNotFound {
		return a.fetchOldCreateMeta(ctx, m)
	}
	if err != nil {
		return err
	}
	it, err := a.pickIssueType(types)
	if err != nil {
		return err
	}
	m.issueType = it
	m.screen = map[string]createField{}
	path := base + "/" + it.ID
	return a.paged(ctx, path, nil, func(l json.RawMessage) (int, error) {
		var fs []createField
		if len(l) > 0 {
			if err := json.Unmarshal(l, &fs); err != nil {
				return 0, errors.New("GET " + a.target + " " + path + ": the answer is not a list of fields")
			}
		}
		for _, f := range fs {
			if f.FieldID == "" {
				f.FieldID = f.Key
			}
			if f.FieldID != "" {
				m.screen[f.FieldID] = f
			}
		}
		return len(fs), nil
	})
}

// fetchOldCreateMeta uses GET rest/api/2/issue/createmeta?projectKeys=,
// which Jira Server before 8.4 has (and 9.0 removed).
func (a *jira) fetchOldCreateMeta(ctx context.Context, m *metadata) error {
	var cm struct {
		Projects []struct {
			Key        string      `json:"key"`
			IssueTypes []issueType `json:"issuetypes"`
		} `json:"projects"`
	}
	q := url.Values{"projectKeys": {a.project}, "expand": {"projects.issuetypes.fields"}}
	_, err := a.call(ctx, request{method: http.MethodGet, path: "rest/api/2/issue/createmeta", query: q}, &cm)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusNotFound {
		return sdk.Permanentf("project-key: project %s not found, or user may not create issues in it", a.project)
	}
	if err != nil {
		return err
	}
	if len(cm.Projects) == 0 {
		return sdk.Permanentf("project-key: project %s not found, or user may not create issues in it", a.project)
	}
	it, err := a.pickIssueType(cm.Projects[0].IssueTypes)
	if err != nil {
		return err
	}
	m.issueType = it
	m.screen = make(map[string]createField, len(it.Fields))
	for id, f := range it.Fields {
		f.FieldID = id
		m.screen[id] = f
	}
	return nil
}

// pickIssueType returns the configured issue type, or Task, or the first
// that is not a sub-task.
func (a *jira) pickIssueType(types []issueType) (issueType, error) {
	if len(types) == 0 {
		return issueType{}, sdk.Permanentf("project-key: project %s has no issue type user may create", a.project)
	}
	want := a.issueType
	if want == "" {
		want = "Task"
	}
	if it, ok := findByName(types, want, func(t issueType) (string, string) { return t.ID, t.Name }); ok {
		return it, nil
	}
	if a.issueType != "" {
		var names []string
		for _, t := range types {
			names = append(names, t.Name)
		}
		return issueType{}, sdk.Permanentf("issuetype: project %s has no issue type %q (it has %s)", a.project, a.issueType, strings.Join(names, ", "))
	}
	for _, t := range types {
		if !t.Subtask {
			return t, nil
		}
	}
	return types[0], nil
}

// findByName finds want by exact name, then by name ignoring case, then by
// id.
func findByName[T any](list []T, want string, key func(T) (id, name string)) (T, bool) {
	for _, v := range list {
		if _, n := key(v); n == want {
			return v, true
		}
	}
	for _, v := range list {
		if _, n := key(v); strings.EqualFold(n, want) {
			return v, true
		}
	}
	for _, v := range list {
		if id, _ := key(v); id != "" && id == want {
			return v, true
		}
	}
	var zero T
	return zero, false
}

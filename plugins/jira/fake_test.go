package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// seen is a request the fake Jira received.
type seen struct {
	method string
	path   string // without the /jira prefix
	query  url.Values
	header http.Header
	body   string
}

// fakeJira answers as Jira Server/Data Center (9.x) or Jira Cloud do, from
// the REST API documentation, and records every request.
type fakeJira struct {
	t     *testing.T
	srv   *httptest.Server
	cloud bool

	mu   sync.Mutex
	reqs []seen
	// old makes the per-project createmeta endpoints answer 404, as Jira
	// Server before 8.4 does.
	old bool
	// sprints are the active sprints of board 7.
	sprints []sprint
	// create, when set, answers POST rest/api/2/issue instead of a 201.
	create func(w http.ResponseWriter, fields map[string]any) bool
	// created are the created issues' labels by key, for searches.
	created map[string][]string
	nextID  int
	// fail answers GET requests of a path instead of the normal answer.
	fail map[string]func(http.ResponseWriter)
}

func newFakeJira(t *testing.T, cloud bool) *fakeJira {
	t.Helper()
	f := &fakeJira{t: t, cloud: cloud, created: map[string][]string{}, nextID: 10100,
		sprints: []sprint{{ID: 42, Name: "Sprint 42", State: "active"}}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the base URL to configure (with a path prefix, as Jira Server
// often runs under /jira).
func (f *fakeJira) URL() string { return f.srv.URL + "/jira" }

func (f *fakeJira) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// count returns how many requests had method and path.
func (f *fakeJira) count(method, path string) int {
	n := 0
	for _, r := range f.requests() {
		if r.method == method && r.path == path {
			n++
		}
	}
	return n
}

// posted returns the fields of every POSTed issue.
func (f *fakeJira) posted() []map[string]any {
	var out []map[string]any
	for _, r := range f.requests() {
		if r.method == http.MethodPost && r.path == "/rest/api/2/issue" {
			var body struct {
				Fields map[string]any `json:"fields"`
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil {
				f.t.Errorf("POST body is not JSON: %v", err)
			}
			out = append(out, body.Fields)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var fieldList = []map[string]any{
	{"id": "summary", "name": "Summary", "custom": false, "schema": map[string]any{"type": "string", "system": "summary"}},
	{"id": "description", "name": "Description", "custom": false, "schema": map[string]any{"type": "string", "system": "description"}},
	{"id": "issuetype", "name": "Issue Type", "schema": map[string]any{"type": "issuetype", "system": "issuetype"}},
	{"id": "project", "name": "Project", "schema": map[string]any{"type": "project", "system": "project"}},
	{"id": "priority", "name": "Priority", "schema": map[string]any{"type": "priority", "system": "priority"}},
	{"id": "assignee", "name": "Assignee", "schema": map[string]any{"type": "user", "system": "assignee"}},
	{"id": "labels", "name": "Labels", "schema": map[string]any{"type": "array", "items": "string", "system": "labels"}},
	{"id": "fixVersions", "name": "Fix Version/s", "schema": map[string]any{"type": "array", "items": "version", "system": "fixVersions"}},
	{"id": "versions", "name": "Affects Version/s", "schema": map[string]any{"type": "array", "items": "version", "system": "versions"}},
	{"id": "customfield_10020", "name": "Sprint", "custom": true, "schema": map[string]any{"type": "array", "items": "json", "custom": sprintSchema, "customId": 10020}},
	{"id": "customfield_10010", "name": "Severity", "custom": true, "schema": map[string]any{"type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select"}},
	{"id": "customfield_10011", "name": "Story Points", "custom": true, "schema": map[string]any{"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"}},
	{"id": "customfield_10012", "name": "Environments", "custom": true, "schema": map[string]any{"type": "array", "items": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:multiselect"}},
	{"id": "customfield_10013", "name": "Scanner tags", "custom": true, "schema": map[string]any{"type": "array", "items": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:labels"}},
	{"id": "customfield_10014", "name": "Security reviewer", "custom": true, "schema": map[string]any{"type": "user", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:userpicker"}},
	{"id": "customfield_10015", "name": "Image", "custom": true, "schema": map[string]any{"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield"}},
	{"id": "customfield_10017", "name": "Due", "custom": true, "schema": map[string]any{"type": "date", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:datepicker"}},
	{"id": "customfield_10016", "name": "Hidden field", "custom": true, "schema": map[string]any{"type": "string"}},
}

var priorities = []map[string]any{{"id": "1", "name": "Highest"}, {"id": "2", "name": "High"}, {"id": "3", "name": "Medium"}, {"id": "4", "name": "Low"}}

// screenFields are the fields of the create screen of Task.
func (f *fakeJira) screenFields() []map[string]any {
	versions := []map[string]any{{"id": "100", "name": "1.0"}, {"id": "101", "name": "2.0"}}
	var out []map[string]any
	for _, fl := range fieldList {
		id := fl["id"].(string)
		if id == "customfield_10016" {
			continue
		}
		c := map[string]any{"fieldId": id, "name": fl["name"], "schema": fl["schema"], "required": id == "summary" || id == "issuetype" || id == "project",
			"operations": []string{"set"}, "hasDefaultValue": false}
		switch id {
		case "fixVersions", "versions":
			c["allowedValues"] = versions
		case "customfield_10010":
			c["allowedValues"] = []map[string]any{{"id": "20", "value": "Critical"}, {"id": "21", "value": "High"}}
		case "customfield_10012":
			c["allowedValues"] = []map[string]any{{"id": "30", "value": "prod"}, {"id": "31", "value": "staging"}}
		case "priority":
			if f.cloud { // Server: from rest/api/2/priority
				c["allowedValues"] = priorities
			}
		}
		out = append(out, c)
	}
	return out
}

var labelJQL = regexp.MustCompile(`labels = "([^"]+)"`)

func (f *fakeJira) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	path := strings.TrimPrefix(r.URL.Path, "/jira")
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{method: r.Method, path: path, query: r.URL.Query(), header: r.Header.Clone(), body: string(body)})
	f.mu.Unlock()
	f.mu.Lock()
	fail := f.fail[path]
	f.mu.Unlock()
	if fail != nil && r.Method == http.MethodGet {
		fail(w)
		return
	}
	q := r.URL.Query()
	startAt, _ := strconv.Atoi(q.Get("startAt"))

	switch {
	case path == "/rest/api/2/serverInfo":
		if f.cloud {
			writeJSON(w, 200, map[string]any{"baseUrl": "https://example.atlassian.net", "version": "1001.0.0-SNAPSHOT",
				"versionNumbers": []int{1001, 0, 0}, "deploymentType": "Cloud", "buildNumber": 100223, "serverTitle": "Jira"})
			return
		}
		// An empty versionNumbers crashed the original postee.
		writeJSON(w, 200, map[string]any{"baseUrl": f.srv.URL + "/jira", "version": "9.12.2", "versionNumbers": []int{},
			"deploymentType": "Server", "buildNumber": 9120002, "serverTitle": "Jira"})
	case path == "/rest/api/2/field":
		writeJSON(w, 200, fieldList)
	case path == "/rest/api/2/priority":
		writeJSON(w, 200, priorities)
	case path == "/rest/api/2/issue/createmeta/SEC/issuetypes":
		if f.old {
			writeJSON(w, 404, map[string]any{"message": "null for uri: " + r.URL.String(), "status-code": 404})
			return
		}
		types := []map[string]any{{"id": "10001", "name": "Bug", "subtask": false}, {"id": "10002", "name": "Task", "subtask": false}, {"id": "10003", "name": "Sub-task", "subtask": true}}
		if f.cloud {
			writeJSON(w, 200, map[string]any{"issueTypes": types, "maxResults": 50, "startAt": 0, "total": len(types)})
			return
		}
		// Server pages one entry at a time here, to exercise paging.
		if startAt >= len(types) {
			writeJSON(w, 200, map[string]any{"values": []any{}, "maxResults": 1, "startAt": startAt, "total": len(types), "isLast": true})
			return
		}
		writeJSON(w, 200, map[string]any{"values": types[startAt : startAt+1], "maxResults": 1, "startAt": startAt, "total": len(types), "isLast": startAt == len(types)-1})
	case path == "/rest/api/2/issue/createmeta/SEC/issuetypes/10002":
		if f.cloud {
			writeJSON(w, 200, map[string]any{"fields": f.screenFields(), "maxResults": 50, "startAt": 0, "total": len(f.screenFields())})
			return
		}
		writeJSON(w, 200, map[string]any{"values": f.screenFields(), "maxResults": 50, "startAt": 0, "total": len(f.screenFields()), "isLast": true})
	case path == "/rest/api/2/issue/createmeta" && f.old:
		fields := map[string]any{}
		for _, c := range f.screenFields() {
			c["key"] = c["fieldId"]
			delete(c, "fieldId")
			fields[c["key"].(string)] = c
		}
		writeJSON(w, 200, map[string]any{"expand": "projects", "projects": []any{map[string]any{"id": "10000", "key": "SEC", "name": "Security",
			"issuetypes": []any{map[string]any{"id": "10002", "name": "Task", "subtask": false, "fields": fields}}}}})
	case path == "/rest/api/2/user/search":
		who := q.Get("username")
		if f.cloud {
			who = q.Get("query")
		}
		users := map[string][]map[string]any{
			"alice":             {{"name": "alice", "key": "JIRAUSER10100", "emailAddress": "alice@example.com", "displayName": "Alice A", "active": true}},
			"carol":             {{"name": "carol2", "key": "JIRAUSER10102", "displayName": "Carol B", "active": true}, {"name": "carol", "key": "JIRAUSER10101", "displayName": "Carol", "active": true}},
			"svc-postee":        {{"name": "svc-postee", "key": "JIRAUSER10000", "active": true}},
			"gone":              {{"name": "gone", "active": false}},
			"alice@example.com": {{"accountId": "5b10a2844c20165700ede21g", "emailAddress": "alice@example.com", "displayName": "Alice A", "active": true, "accountType": "atlassian"}},
			"bot@example.com":   {{"accountId": "557058:bot", "emailAddress": "bot@example.com", "displayName": "Bot", "active": true}},
		}
		list := users[who]
		if list == nil {
			list = []map[string]any{}
		}
		writeJSON(w, 200, list)
	case path == "/rest/agile/1.0/board":
		writeJSON(w, 200, map[string]any{"maxResults": 50, "startAt": 0, "total": 2, "isLast": true, "values": []any{
			map[string]any{"id": 8, "name": "SEC kanban", "type": "kanban"},
			map[string]any{"id": 7, "name": "SEC board", "type": "scrum"},
		}})
	case path == "/rest/agile/1.0/board/7/sprint":
		f.mu.Lock()
		list := append([]sprint(nil), f.sprints...)
		f.mu.Unlock()
		if strings.Contains(q.Get("state"), "future") {
			list = append(list, sprint{ID: 43, Name: "Sprint 43", State: "future"})
		}
		writeJSON(w, 200, map[string]any{"maxResults": 50, "startAt": 0, "isLast": true, "values": list})
	case path == "/rest/api/2/issue" && r.Method == http.MethodPost:
		var in struct {
			Fields map[string]any `json:"fields"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			writeJSON(w, 400, map[string]any{"errorMessages": []string{"Unexpected character"}, "errors": map[string]any{}})
			return
		}
		if f.create != nil && f.create(w, in.Fields) {
			return
		}
		f.mu.Lock()
		f.nextID++
		id := f.nextID
		key := fmt.Sprintf("SEC-%d", id-10100)
		var labels []string
		if l, ok := in.Fields["labels"].([]any); ok {
			for _, x := range l {
				labels = append(labels, x.(string))
			}
		}
		f.created[key] = labels
		f.mu.Unlock()
		writeJSON(w, 201, map[string]any{"id": strconv.Itoa(id), "key": key, "self": f.srv.URL + "/jira/rest/api/2/issue/" + strconv.Itoa(id)})
	case path == "/rest/api/2/search" && !f.cloud || path == "/rest/api/2/search/jql" && f.cloud:
		m := labelJQL.FindStringSubmatch(q.Get("jql"))
		var issues []map[string]any
		f.mu.Lock()
		for key, labels := range f.created {
			for _, l := range labels {
				if m != nil && l == m[1] {
					issues = append(issues, map[string]any{"id": "1", "key": key, "self": "x"})
				}
			}
		}
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"startAt": 0, "maxResults": 1, "total": len(issues), "issues": issues})
	default:
		writeJSON(w, 404, map[string]any{"errorMessages": []string{"not found: " + r.Method + " " + path}})
	}
}

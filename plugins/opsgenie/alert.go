package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

// Opsgenie's limits of the create-alert request (characters).
const (
	maxMessage     = 130
	maxAlias       = 512
	maxDescription = 15000
	maxEntity      = 512
	maxUser        = 100
	maxSource      = 100
	maxTags        = 20
	maxTag         = 50
	maxTargets     = 50 // responders, and visibleTo
	maxDetailKey   = 128
	maxDetailValue = 8000
	maxDetailsSize = 8000 // keys and values of details together

	source          = "postee"
	fallbackMessage = "postee event"
)

// alert is the body of POST /v2/alerts.
type alert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias,omitempty"`
	Description string            `json:"description,omitempty"`
	Responders  []target          `json:"responders,omitempty"`
	VisibleTo   []target          `json:"visibleTo,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	Entity      string            `json:"entity,omitempty"`
	Source      string            `json:"source,omitempty"`
	Priority    string            `json:"priority,omitempty"`
	User        string            `json:"user,omitempty"`
}

// target is a responder or a visibleTo entry: a user by username, or a
// team, schedule or escalation by name.
type target struct {
	Type     string `json:"type"`
	Name     string `json:"name,omitempty"`
	Username string `json:"username,omitempty"`
}

var (
	responderTypes = []string{"user", "team", "schedule", "escalation"}
	visibleTypes   = []string{"user", "team"}
)

// parseTarget reads "name" (a user), or "<type>:name".
func parseTarget(s string, types []string) (target, error) {
	s = strings.TrimSpace(s)
	typ, name := "user", s
	if t, n, ok := strings.Cut(s, ":"); ok && !strings.Contains(t, "@") {
		typ, name = strings.ToLower(strings.TrimSpace(t)), strings.TrimSpace(n)
		known := false
		for _, k := range types {
			known = known || k == typ
		}
		if !known {
			return target{}, fmt.Errorf("%q: the type must be one of %s", s, strings.Join(types, ", "))
		}
	}
	if name == "" {
		return target{}, fmt.Errorf("%q has no name", s)
	}
	if typ == "user" {
		return target{Type: typ, Username: name}, nil
	}
	return target{Type: typ, Name: name}, nil
}

// parseTargets checks a configured list; the owner placeholder is kept as
// a user named by it and expanded at execution.
func parseTargets(key string, list []string, types []string) ([]target, error) {
	var out []target
	var problems []string
	for _, s := range list {
		if strings.TrimSpace(s) == "" {
			continue
		}
		t, err := parseTarget(s, types)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		out = append(out, t)
	}
	if len(problems) > 0 {
		return nil, sdk.SettingsErrorf(key, "%s", strings.Join(problems, "; "))
	}
	if len(out) > maxTargets {
		return nil, sdk.SettingsErrorf(key, "has %d entries; Opsgenie accepts at most %d", len(out), maxTargets)
	}
	return out, nil
}

// expandTargets replaces the owner placeholder with the event's
// application scope owners (users), drops duplicates and keeps at most
// maxTargets.
func expandTargets(list []target, event []byte) []target {
	var out []target
	seen := map[target]bool{}
	add := func(t target) {
		if !seen[t] && len(out) < maxTargets {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, t := range list {
		if t.Type != "user" || t.Username != sdk.OwnerPlaceholder {
			add(t)
			continue
		}
		for _, o := range sdk.ScopeOwners(event) {
			add(target{Type: "user", Username: sdkhttp.Truncate(o, maxUser)})
		}
	}
	return out
}

// fields are what a template's description object sets.
type fields struct {
	description, alias, entity, priority string
	has                                  map[string]bool
	tags                                 []string
	details                              map[string]string
}

// known are the keys of a description object the action reads.
var known = []string{"description", "alias", "entity", "priority", "tags", "details"}

// parseFields reads the description as a template's object of alert
// fields. ok is false when it is not a JSON object with at least one of the
// known keys: the description is then plain text.
func parseFields(desc string) (f fields, ok bool) {
	trimmed := strings.TrimSpace(desc)
	if !strings.HasPrefix(trimmed, "{") {
		return f, false
	}
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(trimmed))
	dec.UseNumber()
	if dec.Decode(&obj) != nil || dec.More() {
		return f, false
	}
	f.has = map[string]bool{}
	for _, k := range known {
		raw, present := obj[k]
		if !present || string(raw) == "null" {
			continue
		}
		f.has[k] = true
		switch k {
		case "description":
			f.description = rawText(raw)
		case "alias":
			f.alias = rawText(raw)
		case "entity":
			f.entity = rawText(raw)
		case "priority":
			f.priority = rawText(raw)
		case "tags":
			f.tags = rawTags(raw)
		case "details":
			f.details = rawDetails(raw)
		}
	}
	return f, len(f.has) > 0
}

// rawText is a JSON value as text: a string as it is, anything else as
// compact JSON (the original postee wrote Go's map[...] notation).
func rawText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// text is a decoded JSON value as text, like rawText.
func text(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// rawTags reads tags: a list, or a comma-separated string.
func rawTags(raw json.RawMessage) []string {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		out := make([]string, 0, len(list))
		for _, e := range list {
			if string(e) != "null" {
				out = append(out, rawText(e))
			}
		}
		return out
	}
	return strings.Split(rawText(raw), ",")
}

// rawDetails reads details: an object of values (as text); anything else
// becomes one detail "details".
func rawDetails(raw json.RawMessage) map[string]string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return map[string]string{"details": rawText(raw)}
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		if string(v) != "null" {
			out[k] = rawText(v)
		}
	}
	return out
}

// cleanTags trims tags, drops empty ones and duplicates, cuts each to
// maxTag characters and keeps the first maxTags.
func cleanTags(tags []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range tags {
		t = sdkhttp.Truncate(strings.TrimSpace(t), maxTag)
		if t == "" || seen[t] {
			continue
		}
		seen[t] = true
		if len(out) == maxTags {
			break
		}
		out = append(out, t)
	}
	return out
}

// buildAlert builds the alert for ex, with notes on template values that
// were left out.
func (a *opsgenieAction) buildAlert(ex *sdk.Execution) (alert, []string) {
	m := ex.Message
	var notes []string
	al := alert{
		Responders: expandTargets(a.responders, ex.Event),
		VisibleTo:  expandTargets(a.visibleTo, ex.Event),
		Entity:     a.entity,
		Source:     sdkhttp.Truncate(source, maxSource),
		Priority:   a.priority,
		User:       a.user,
	}
	alias := a.alias
	tags := append([]string(nil), a.tags...)
	details := map[string]string{}
	f, ok := parseFields(m.Description)
	if ok {
		al.Description = f.description
		if f.has["alias"] && strings.TrimSpace(f.alias) != "" {
			alias = f.alias
		}
		if f.has["entity"] {
			al.Entity = strings.TrimSpace(f.entity)
		}
		if f.has["priority"] {
			if p, valid := normalizePriority(f.priority); valid {
				al.Priority = p
			} else {
				notes = append(notes, fmt.Sprintf("template priority %q is not P1-P5; %s sent", sdkhttp.Truncate(f.priority, 20), al.Priority))
			}
		}
		tags = append(tags, f.tags...)
		for k, v := range f.details {
			details[k] = v
		}
	} else {
		al.Description = m.Description
	}
	if u := strings.TrimSpace(m.URL); u != "" {
		if _, set := details["url"]; !set {
			details["url"] = u
		}
	}
	if strings.TrimSpace(alias) == "" {
		alias = defaultAlias(ex.EventID, ex.Route)
	}
	al.Message = sdkhttp.Truncate(messageOf(m, al.Description), maxMessage)
	al.Alias = sdkhttp.Truncate(strings.TrimSpace(alias), maxAlias)
	al.Description = sdkhttp.Truncate(al.Description, maxDescription)
	al.Entity = sdkhttp.Truncate(al.Entity, maxEntity)
	al.Tags = cleanTags(tags)
	al.Details = cleanDetails(details)
	return al, notes
}

// messageOf is the alert's message: the title; without one the template's
// summary, then the first line of the alert's description. It is one line.
func messageOf(m sdk.Message, description string) string {
	for _, s := range []string{m.Title, m.Summary, firstLine(description)} {
		if s = strings.Join(strings.Fields(s), " "); s != "" {
			return s
		}
	}
	return fallbackMessage
}

func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// defaultAlias identifies one event on one route: Opsgenie de-duplicates
// open alerts by alias, so a retry or re-send does not open a second alert.
func defaultAlias(eventID, route string) string {
	h := sha256.New()
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write([]byte(route))
	return "postee-" + hex.EncodeToString(h.Sum(nil))
}

// cleanDetails cuts keys and values to Opsgenie's limits and keeps, in key
// order, what fits in maxDetailsSize characters.
func cleanDetails(in map[string]string) map[string]string {
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]string{}
	size := 0
	for _, k := range keys {
		key := sdkhttp.Truncate(strings.TrimSpace(k), maxDetailKey)
		if key == "" {
			continue
		}
		v := sdkhttp.Truncate(in[k], maxDetailValue)
		room := maxDetailsSize - size - sdkhttp.UTF16Len(key)
		if room <= 0 {
			break
		}
		if sdkhttp.UTF16Len(v) > room {
			v = sdkhttp.Truncate(v, room)
		}
		out[key] = v
		size += sdkhttp.UTF16Len(key) + sdkhttp.UTF16Len(v)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

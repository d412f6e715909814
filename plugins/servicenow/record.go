package main

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
)

// Where the record came from, in the result's record_from detail.
const (
	fromTemplate = "template"
	fromMessage  = "message"
)

// openedAtLayout is ServiceNow's date-time format; values sent through the
// Table API are taken as UTC.
const openedAtLayout = "2006-01-02 15:04:05"

// defaultLevel is impact and urgency when the message has no usable
// severity, as in the original postee (3, low).
const defaultLevel = 3

// record returns the fields of the record to create for msg, and where it
// came from.
//
// The bundled servicenow templates render the record itself as a JSON
// object (short_description, description, work_notes, category, impact,
// ...): when the description is such an object, it is the record, and the
// message fields fill only what it lacks. Any other description is mapped
// as the original postee did (fields): title to short_description, the
// description in [code] tags to work_notes, summary to description, and so
// on.
func record(msg sdk.Message, user string) (map[string]any, string) {
	fields := messageFields(msg, user)
	rec, ok := templateRecord(msg.Description)
	if !ok {
		return fields, fromMessage
	}
	delete(fields, "work_notes") // the description is the record, not notes
	for k, v := range fields {
		if _, set := rec[k]; !set {
			rec[k] = v
		}
	}
	return rec, fromTemplate
}

// templateRecord decodes a description that is a record: a JSON object
// with a short_description or work_notes string.
func templateRecord(desc string) (map[string]any, bool) {
	d := strings.TrimSpace(desc)
	if !strings.HasPrefix(d, "{") {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(d))
	dec.UseNumber()
	var rec map[string]any
	if dec.Decode(&rec) != nil || dec.More() {
		return nil, false
	}
	for _, k := range []string{"short_description", "work_notes"} {
		if _, ok := rec[k].(string); ok {
			return rec, true
		}
	}
	return nil, false
}

// messageFields maps the message to record fields as the original postee
// did; fields without a value are left out.
func messageFields(msg sdk.Message, user string) map[string]any {
	rec := map[string]any{}
	set := func(k, v string) {
		if v = strings.TrimSpace(v); v != "" {
			rec[k] = v
		}
	}
	set("short_description", msg.Title)
	if strings.TrimSpace(msg.Description) != "" {
		rec["work_notes"] = "[code]" + msg.Description + "[/code]"
	}
	set("description", msg.Summary)
	set("opened_at", openedAt(msg.Date))
	set("caller_id", user)
	set("category", msg.Category)
	set("subcategory", msg.Subcategory)
	level := severityLevel(msg.Severity)
	rec["impact"] = level
	rec["urgency"] = level
	set("assigned_to", msg.AssignedTo)
	set("assignment_group", msg.AssignedGroup)
	return rec
}

// openedAt converts the message date to ServiceNow's date-time format, in
// UTC: Unix seconds (as the original postee read it; fractions allowed), an
// RFC 3339 time, or a value already in ServiceNow's format. Anything else
// gives "" (the field is left out and ServiceNow sets the time of creation).
func openedAt(date string) string {
	date = strings.TrimSpace(date)
	if date == "" {
		return ""
	}
	if f, err := strconv.ParseFloat(date, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 253402300799 { // 9999-12-31
			return ""
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC().Format(openedAtLayout)
	}
	if t, err := time.Parse(time.RFC3339Nano, date); err == nil {
		return t.UTC().Format(openedAtLayout)
	}
	if t, err := time.Parse(openedAtLayout, date); err == nil {
		return t.Format(openedAtLayout)
	}
	return ""
}

// severityLevel is impact and urgency for the message severity: a number
// (1 high, 2 medium, 3 low; others are brought into that range), or a
// severity name (critical and high 1, medium 2, others 3, as the bundled
// templates map them). Anything else is 3, as in the original postee.
func severityLevel(sev string) int {
	sev = strings.ToLower(strings.TrimSpace(sev))
	if f, err := strconv.ParseFloat(sev, 64); err == nil && !math.IsNaN(f) {
		return int(math.Max(1, math.Min(3, math.Round(f))))
	}
	switch sev {
	case "critical", "high":
		return 1
	case "medium":
		return 2
	}
	return defaultLevel
}

package dryrun

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteJSON writes the reports as one JSON document: {"events": [...]}.
func WriteJSON(w io.Writer, reps []*Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(struct {
		Events []*Report `json:"events"`
	}{reps})
}

// WriteText writes a report for people.
func WriteText(w io.Writer, rep *Report) error {
	b := &strings.Builder{}
	matched := 0
	for _, r := range rep.Routes {
		if r.Matched {
			matched++
		}
	}
	fmt.Fprintf(b, "event %d: ", rep.Event)
	switch {
	case rep.Error != "":
		fmt.Fprintf(b, "error: %s\n", rep.Error)
	default:
		fmt.Fprintf(b, "%d of %d %s %s", matched, len(rep.Routes), plural(len(rep.Routes), "route"), verb(matched))
		if rep.Runner != "" {
			fmt.Fprintf(b, " (the producer names runner %q)", rep.Runner)
		}
		b.WriteString("\n")
	}
	for i := range rep.Routes {
		writeRoute(b, &rep.Routes[i])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func verb(n int) string {
	if n == 1 {
		return "matches"
	}
	return "match"
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

func writeRoute(b *strings.Builder, r *RouteReport) {
	fmt.Fprintf(b, "  route %q", r.Name)
	if r.Line > 0 {
		fmt.Fprintf(b, " (line %d)", r.Line)
	}
	b.WriteString(": ")
	switch {
	case r.Outcome == OutcomeError && r.Template == nil:
		fmt.Fprintf(b, "error: %s\n", r.Error)
		return
	case !r.Matched:
		b.WriteString("does not match (" + decision(r) + ")\n")
		return
	}
	b.WriteString("matches (" + decision(r) + ")\n")
	if r.Outcome == OutcomeNoActions {
		b.WriteString("    no enabled actions: nothing runs\n")
		return
	}
	if d := r.Dedup; d != nil {
		fmt.Fprintf(b, "    de-duplication (unique-message-props: %s", strings.Join(d.Props, ", "))
		if d.Timeout != "" {
			fmt.Fprintf(b, "; kept %s", d.Timeout)
		}
		fmt.Fprintf(b, "): key %s\n", d.Key)
		if d.DuplicateOf > 0 {
			fmt.Fprintf(b, "      dropped: event %d had the same key; nothing runs for this route\n", d.DuplicateOf)
			return
		}
		b.WriteString("      first event with this key: sent; later ones with it are dropped\n")
	}
	if t := r.Template; t != nil {
		fmt.Fprintf(b, "    template %q", t.Name)
		if t.Package != "" {
			fmt.Fprintf(b, " (package %s)", t.Package)
		}
		b.WriteString("\n")
		switch {
		case t.Error != "" && r.Outcome == OutcomeNoTemplate:
			fmt.Fprintf(b, "      no message: %s\n", t.Error)
			fmt.Fprintf(b, "      each action's execution is recorded as failed\n")
		case t.Error != "":
			fmt.Fprintf(b, "      error: %s\n", t.Error)
			b.WriteString("      the route's actions do not run\n")
			return
		default:
			writeMessage(b, t.Message, "      ")
		}
	}
	if a := r.Aggregation; a != nil {
		writeAggregation(b, a)
		if a.Error != "" {
			return
		}
	}
	if len(r.Actions) > 0 {
		switch {
		case r.Aggregation != nil && !r.Aggregation.Sent:
			b.WriteString("    actions, when the batch is sent")
		default:
			b.WriteString("    actions")
		}
		switch r.Order {
		case OrderSerial:
			b.WriteString(", one after another (serialize-actions):\n")
		case OrderParallel:
			b.WriteString(", at the same time:\n")
		default:
			b.WriteString(":\n")
		}
		for _, a := range r.Actions {
			fmt.Fprintf(b, "      %d. %s (%s): %s\n", a.N, a.Name, a.Type, where(a))
		}
	}
}

func decision(r *RouteReport) string {
	files := len(r.Evaluated) > 0 && r.Evaluated[0] != "input"
	switch {
	case r.Matched && len(r.Evaluated) == 0:
		return "no input: every event matches"
	case r.Matched && files:
		return "input-files: " + strings.TrimPrefix(r.DecidedBy, "filter ") + " allows it"
	case r.Matched:
		return "input"
	case files:
		names := make([]string, len(r.Evaluated))
		for i, e := range r.Evaluated {
			names[i] = strings.TrimPrefix(e, "filter ")
		}
		return "input-files: none of " + strings.Join(names, ", ") + " allows it"
	}
	return "input"
}

func writeAggregation(b *strings.Builder, a *Aggregation) {
	b.WriteString("    aggregation (")
	var by []string
	if a.Number > 0 {
		by = append(by, "aggregate-message-number "+strconv.Itoa(a.Number))
	}
	if a.Timeout != "" {
		by = append(by, "aggregate-message-timeout "+a.Timeout)
	}
	b.WriteString(strings.Join(by, ", ") + "): ")
	how := "the messages are combined by package " + a.Package
	if a.Joined {
		how = "the template has no aggregation package: first title, descriptions joined"
	}
	events := make([]string, len(a.Events))
	for i, e := range a.Events {
		events[i] = strconv.Itoa(e)
	}
	switch {
	case a.Error != "":
		fmt.Fprintf(b, "batch of events %s complete, but combining failed: %s\n", strings.Join(events, ", "), a.Error)
		b.WriteString("      the messages are sent on their own\n")
	case a.Sent:
		fmt.Fprintf(b, "batch complete (events %s): one message to the actions\n", strings.Join(events, ", "))
		fmt.Fprintf(b, "      %s\n", how)
		writeMessage(b, a.Message, "      ")
	default:
		fmt.Fprintf(b, "held, message %d", a.Position)
		if a.Number > 0 {
			fmt.Fprintf(b, " of %d", a.Number)
		}
		fmt.Fprintf(b, " (events %s)\n", strings.Join(events, ", "))
		var when []string
		if a.Number > 0 {
			more := a.Number - a.Position
			when = append(when, fmt.Sprintf("%d more matching %s", more, map[bool]string{true: "event arrives", false: "events arrive"}[more == 1]))
		}
		if a.Timeout != "" {
			when = append(when, a.Timeout+" after the batch's first message")
		}
		fmt.Fprintf(b, "      sent when %s; %s\n", strings.Join(when, " or "), how)
	}
}

func writeMessage(b *strings.Builder, m *Message, indent string) {
	if m == nil {
		return
	}
	line := func(k, v string) {
		if v == "" {
			return
		}
		if !strings.Contains(v, "\n") {
			fmt.Fprintf(b, "%s%s: %s\n", indent, k, v)
			return
		}
		fmt.Fprintf(b, "%s%s:\n", indent, k)
		for _, l := range strings.Split(strings.TrimRight(v, "\n"), "\n") {
			fmt.Fprintf(b, "%s  | %s\n", indent, l)
		}
	}
	fmt.Fprintf(b, "%stitle: %s\n", indent, m.Title)
	line("description", m.Description)
	line("url", m.URL)
	line("severity", m.Severity)
	line("summary", m.Summary)
	line("date", m.Date)
	line("category", m.Category)
	line("subcategory", m.Subcategory)
	line("assigned to", m.AssignedTo)
	line("assigned group", m.AssignedGroup)
}

func where(a ActionReport) string {
	origin := ""
	if a.RunsOn == "@origin" {
		origin = " (runs-on: @origin)"
	}
	switch a.Where {
	case WhereRunner:
		return fmt.Sprintf("on runner %q%s", a.Runner, origin)
	case WhereSkipped:
		return fmt.Sprintf("already ran on runner %q, where the event arrived%s", a.Runner, origin)
	case WhereNowhere:
		return "fails: " + a.Error
	}
	return "here (the standalone postee or the controller)"
}

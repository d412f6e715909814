package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

const (
	// maxSummary is PagerDuty's limit on payload.summary.
	maxSummary = 1024
	// maxDetails bounds the description put into custom_details (bytes):
	// PagerDuty refuses events over 512 KB.
	maxDetails = 400 << 10
	// maxLinks bounds the links taken from the message URL.
	maxLinks = 10
	// source is payload.source, as in the original postee.
	source = "postee"
	// defaultSeverity is the severity without a recognised result_severity.
	defaultSeverity = "critical"
	// fallbackSummary is the summary of a message without title or text.
	fallbackSummary = "postee event"
)

// event is an Events API v2 trigger event.
type event struct {
	RoutingKey  string  `json:"routing_key"`
	EventAction string  `json:"event_action"`
	DedupKey    string  `json:"dedup_key"`
	Payload     payload `json:"payload"`
	Client      string  `json:"client"`
	Links       []link  `json:"links,omitempty"`

	truncated  bool // the summary was cut
	detailsCut bool // the description was cut
}

type payload struct {
	Summary       string          `json:"summary"`
	Source        string          `json:"source"`
	Severity      string          `json:"severity"`
	Timestamp     string          `json:"timestamp,omitempty"`
	Class         string          `json:"class,omitempty"`
	CustomDetails json.RawMessage `json:"custom_details,omitempty"`
}

type link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// buildEvent builds the trigger event for ex.
func buildEvent(routingKey string, ex *sdk.Execution) event {
	m := ex.Message
	summary := summaryOf(m)
	cut := sdkhttp.Truncate(summary, maxSummary)
	ev := event{
		RoutingKey:  routingKey,
		EventAction: "trigger",
		DedupKey:    dedupKey(ex.EventID, ex.Route),
		Client:      source,
		Payload: payload{
			Summary:   cut,
			Source:    source,
			Severity:  severity(m.Severity),
			Timestamp: timestamp(m.Date),
			Class:     sdkhttp.Truncate(strings.TrimSpace(m.Category), 256),
		},
		Links:     links(m.URL),
		truncated: cut != summary,
	}
	ev.Payload.CustomDetails, ev.detailsCut = customDetails(m)
	return ev
}

// summaryOf is the alert's summary: the title; without one the template's
// summary, then the first line of the description.
func summaryOf(m sdk.Message) string {
	for _, s := range []string{m.Title, m.Summary, firstLine(m.Description)} {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return fallbackSummary
}

func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// dedupKey is stable for one event on one route: retries and re-sends of
// the same execution update PagerDuty's open alert instead of paging again.
func dedupKey(eventID, route string) string {
	h := sha256.New()
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write([]byte(route))
	return "postee-" + hex.EncodeToString(h.Sum(nil))
}

// severities maps a template's result_severity (lower-cased) to one of
// PagerDuty's four severities.
var severities = map[string]string{
	"critical":      "critical",
	"fatal":         "critical",
	"error":         "error",
	"err":           "error",
	"high":          "error",
	"important":     "error",
	"warning":       "warning",
	"warn":          "warning",
	"medium":        "warning",
	"moderate":      "warning",
	"info":          "info",
	"information":   "info",
	"informational": "info",
	"low":           "info",
	"negligible":    "info",
	"none":          "info",
}

// severity maps result_severity; empty or unrecognised gives critical, as
// the original postee always sent.
func severity(s string) string {
	if v, ok := severities[strings.ToLower(strings.TrimSpace(s))]; ok {
		return v
	}
	return defaultSeverity
}

// timestamp is the template's date when it is an RFC 3339 time; otherwise
// PagerDuty uses the time it receives the event.
func timestamp(date string) string {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(date))
	if err != nil {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// links turns the message URL (one or more lines) into PagerDuty links;
// anything but an absolute http(s) URL is left out.
func links(raw string) []link {
	var out []link
	for line := range strings.Lines(raw) {
		line = strings.TrimSpace(line)
		u, err := url.Parse(line)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			continue
		}
		out = append(out, link{Href: line, Text: "Details"})
		if len(out) == maxLinks {
			break
		}
	}
	if len(out) > 1 {
		for i := range out {
			out[i].Text = "Details " + strconv.Itoa(i+1)
		}
	}
	return out
}

// customDetails is the description as PagerDuty's custom_details: a JSON
// object as it is (PagerDuty shows its fields), any other text as
// {"description": text}, with the template's summary when there is one.
// It reports whether the description had to be cut.
func customDetails(m sdk.Message) (json.RawMessage, bool) {
	d := m.Description
	if strings.TrimSpace(d) == "" && m.Summary == "" {
		return nil, false
	}
	if len(d) <= maxDetails && isObject(d) {
		return json.RawMessage(d), false
	}
	cut := false
	if len(d) > maxDetails {
		d, cut = cutBytes(d, maxDetails-len("…"))+"…", true
	}
	obj := map[string]string{}
	if strings.TrimSpace(d) != "" {
		obj["description"] = d
	}
	if s := strings.TrimSpace(m.Summary); s != "" {
		obj["summary"] = sdkhttp.Truncate(s, maxSummary)
	}
	b, _ := json.Marshal(obj) // a map of strings always encodes
	return b, cut
}

func isObject(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "{") && json.Valid([]byte(s))
}

// cutBytes returns the longest prefix of s of at most n bytes that ends on
// a rune boundary.
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

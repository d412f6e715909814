package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

var cveRE = regexp.MustCompile(`CVE-\d{4}-\d+`)

// balanced checks that s closes every element it opens, in order.
func balanced(t *testing.T, s string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(s))
	var stack []string
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		name, _ := z.TagName()
		switch {
		case tt == html.StartTagToken && !voidElements[string(name)]:
			stack = append(stack, string(name))
		case tt == html.EndTagToken:
			if len(stack) == 0 || stack[len(stack)-1] != string(name) {
				t.Fatalf("</%s> closes %v in\n%s", name, stack, s)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		t.Fatalf("%v left open in\n%s", stack, s)
	}
}

// cardText returns every text of a Workflows message's card, in order.
func cardText(t *testing.T, body string) (title string, texts []string) {
	t.Helper()
	var m workflowMessage
	var raw struct {
		Attachments []struct {
			Content struct {
				Body []json.RawMessage `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	for i, e := range raw.Attachments[0].Content.Body {
		var el struct {
			Type string     `json:"type"`
			Text string     `json:"text"`
			Rows []tableRow `json:"rows"`
		}
		if err := json.Unmarshal(e, &el); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			title = el.Text
			continue
		}
		texts = append(texts, el.Text)
		for _, r := range el.Rows {
			for _, c := range r.Cells {
				texts = append(texts, c.Items[0].Text)
			}
		}
	}
	return title, texts
}

// TestSplit sends a report far over the size limit: it arrives as several
// messages, in order, each within the limit, each HTML part balanced with
// its table's header row repeated, every vulnerability exactly once.
func TestSplit(t *testing.T) {
	msg := render(t, "postee.vuls.html", testevents.TrivyReport("registry.example.com/team/api:2.0.1", 400))
	if len(msg.Description) < 60000 {
		t.Fatalf("the report is only %d bytes", len(msg.Description))
	}
	wantCVEs := cveRE.FindAllString(msg.Description, -1)
	for _, format := range []string{formatConnector, formatWorkflow} {
		for _, limit := range []int{24 << 10, 8 << 10} {
			t.Run(fmt.Sprintf("%s %d", format, limit), func(t *testing.T) {
				answer := connectorOK
				if format == formatWorkflow {
					answer = workflowOK
				}
				h := newHook(t, answer)
				hs := newHarness(t)
				hs.MustConfigure("teams", map[string]any{"url": h.url(), "format": format, "size-limit": limit, "max-parts": 99})
				out := hs.Execute("teams", sdktest.Event(`{}`, msg))
				if !out.OK() {
					t.Fatal(out.Err)
				}
				reqs := h.Requests()
				if len(reqs) < 3 || out.Details["parts"] != fmt.Sprint(len(reqs)) || out.Details["parts_sent"] != fmt.Sprint(len(reqs)) {
					t.Fatalf("%d requests, details %v", len(reqs), out.Details)
				}
				var got []string
				for i, r := range reqs {
					if len(string(r.Body)) > limit {
						t.Errorf("part %d is %d bytes, over %d", i+1, len(string(r.Body)), limit)
					}
					suffix := fmt.Sprintf(" (part %d/%d)", i+1, len(reqs))
					if format == formatConnector {
						card := decode(t, string(r.Body))
						if title := card["title"].(string); !strings.HasSuffix(title, suffix) || !strings.HasPrefix(title, "registry.example.com/team/api:2.0.1") {
							t.Errorf("part %d title %q", i+1, title)
						}
						text := card["text"].(string)
						balanced(t, text)
						if i > 0 && strings.Contains(text, "CVE-") && !strings.Contains(text, "<th style=\"text-align: left;\">Vulnerability</th>") {
							t.Errorf("part %d continues a table without its header:\n%.300s", i+1, text)
						}
						got = append(got, cveRE.FindAllString(text, -1)...)
						continue
					}
					title, texts := cardText(t, string(r.Body))
					if !strings.HasSuffix(title, suffix) {
						t.Errorf("part %d title %q", i+1, title)
					}
					got = append(got, cveRE.FindAllString(strings.Join(texts, "\n"), -1)...)
				}
				// Every link's label and target name the vulnerability: each
				// appears twice in connector HTML and in Markdown links.
				if strings.Join(got, ",") != strings.Join(wantCVEs, ",") {
					t.Errorf("vulnerabilities arrived as %d ids, want %d in the same order", len(got), len(wantCVEs))
				}
			})
		}
	}
}

// TestMaxParts cuts a message over max-parts and says so in the last part.
func TestMaxParts(t *testing.T) {
	msg := render(t, "postee.vuls.html", testevents.TrivyReport("registry.example.com/team/api:2.0.1", 400))
	msg.URL = "https://aqua.example.com/#/images/api"
	for _, format := range []string{formatConnector, formatWorkflow} {
		t.Run(format, func(t *testing.T) {
			h := newHook(t, connectorOK)
			hs := newHarness(t)
			hs.MustConfigure("teams", map[string]any{"url": h.url(), "format": format, "max-parts": 2})
			out := hs.Execute("teams", sdktest.Event(`{}`, msg))
			if !out.OK() {
				t.Fatal(out.Err)
			}
			reqs := h.Requests()
			if len(reqs) != 2 || out.Details["parts"] != "2" || out.Details["parts_omitted"] == "" {
				t.Fatalf("%d requests, details %v", len(reqs), out.Details)
			}
			last := string(reqs[1].Body)
			want := "This message was too long for Teams: " + out.Details["parts_omitted"] + " more part(s) were not sent. Use the Open button for the whole report."
			if !strings.Contains(last, want) || strings.Contains(string(reqs[0].Body), "too long") {
				t.Errorf("the note is not (only) in the last part")
			}
			if !strings.Contains(last, "https://aqua.example.com/#/images/api") {
				t.Error("the last part has no link to the report")
			}
			if len(last) > 24<<10 {
				t.Errorf("last part is %d bytes", len(last))
			}
		})
	}
}

// TestResume fails the second of three parts once: the retry of the same
// execution sends the second and third parts only.
func TestResume(t *testing.T) {
	msg := render(t, "postee.vuls.html", testevents.TrivyReport("registry.example.com/team/api:2.0.1", 120))
	h := newHook(t, connectorOK, sdktest.Reply{Status: 503, Body: "busy"}, connectorOK)
	a := configure(t, map[string]any{"url": h.url(), "size-limit": "12KB"})
	ex := &sdk.Execution{ID: "exec-1", Attempt: 1, Message: msg}
	res, err := a.Execute(context.Background(), ex)
	if err == nil || sdk.IsPermanent(err) || !strings.Contains(err.Error(), "part 2 of ") || res.Details["parts_sent"] != "1" {
		t.Fatalf("first attempt: %v %v", err, res.Details)
	}
	parts := res.Details["parts"]
	first := h.Requests()
	ex.Attempt = 2
	res, err = a.Execute(context.Background(), ex)
	if err != nil {
		t.Fatal(err)
	}
	all := h.Requests()
	if res.Details["resumed_at_part"] != "2" || res.Details["parts_sent"] != parts || fmt.Sprint(len(all)) != fmt.Sprint(len(first)+mustAtoi(t, parts)-1) {
		t.Fatalf("second attempt: %v, %d requests", res.Details, len(all))
	}
	if string(all[2].Body) != string(all[1].Body) {
		t.Error("the retry did not start with the part that failed")
	}
	// A new execution of the same message starts from the beginning.
	res, err = a.Execute(context.Background(), &sdk.Execution{ID: "exec-2", Message: msg})
	if err != nil || res.Details["resumed_at_part"] != "" {
		t.Fatalf("%v %v", err, res.Details)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTemplates delivers the bundled HTML templates' output on realistic
// events, in both forms.
func TestTemplates(t *testing.T) {
	cases := []struct {
		name, pkg string
		event     []byte
		want      []string // texts that arrive in both forms
	}{
		{"vuls.html aqua", "postee.vuls.html", testevents.AquaScan("registry.example.com/team/web:1.4.2", 12), []string{"Vulnerability summary", "CVE-2020-20000", "openssl"}},
		{"vuls.html trivy", "postee.vuls.html", testevents.TrivyReport("alpine:3.18", 8), []string{"Vulnerability summary", "CVE-"}},
		{"vuls.html operator", "postee.vuls.html", testevents.TrivyOperatorReport("prod", "web", 5), []string{"Artifact", "CVE-"}},
		{"tracee.html", "postee.tracee.html", testevents.Tracee("TRC-2", "node-1"), []string{"TRC-2", "node-1"}},
		{"rawmessage.html", "postee.rawmessage.html", testevents.Tracee("TRC-3", "node-2"), []string{"node-2"}},
		{"rawmessage.json", "postee.rawmessage.json", testevents.AquaScan("web:1", 2), []string{`"image": "web:1"`}},
		{"legacy html", "legacy:html", testevents.AquaScan("registry.example.com/team/web:1.4.2", 6), []string{"Found vulnerabilities", "CVE-2020-20000"}},
	}
	for _, c := range cases {
		msg := render(t, c.pkg, c.event)
		for _, format := range []string{formatConnector, formatWorkflow} {
			t.Run(c.name+" "+format, func(t *testing.T) {
				h := newHook(t, connectorOK)
				hs := newHarness(t)
				hs.MustConfigure("teams", map[string]any{"url": h.url(), "format": format})
				out := hs.Execute("teams", sdktest.Event(string(c.event), msg))
				if !out.OK() {
					t.Fatal(out.Err)
				}
				var text string
				for _, r := range h.Requests() {
					if len(string(r.Body)) > 24<<10 {
						t.Errorf("request of %d bytes", len(string(r.Body)))
					}
					if format == formatConnector {
						card := decode(t, string(r.Body))
						balanced(t, card["text"].(string))
						text += html.UnescapeString(card["text"].(string))
					} else {
						_, texts := cardText(t, string(r.Body))
						text += strings.NewReplacer(`\_`, "_", `\*`, "*", `\[`, "[", `\]`, "]").Replace(strings.Join(texts, "\n"))
					}
				}
				for _, w := range c.want {
					if !strings.Contains(text, w) {
						t.Errorf("%q did not arrive in\n%.2000s", w, text)
					}
				}
				if format == formatWorkflow && strings.Contains(text, "<td>") {
					t.Errorf("HTML tags left in the card:\n%.2000s", text)
				}
			})
		}
	}
}

// TestOddInput never panics and always sends valid JSON within the limit.
func TestOddInput(t *testing.T) {
	descs := map[string]string{
		"empty":          "",
		"invalid UTF-8":  "<p>bad \xff\xfe bytes</p>",
		"one huge word":  strings.Repeat("A", 100000),
		"huge cell":      "<table><tr><th>k</th></tr><tr><td>" + strings.Repeat("word ", 20000) + "</td></tr></table>",
		"unclosed tags":  "<p><b>open <i>more <table><tr><td>cell" + strings.Repeat("<p>x</p>", 3000),
		"deep nesting":   strings.Repeat("<div>", 500) + strings.Repeat("text ", 5000) + strings.Repeat("</div>", 500),
		"stray closings": "</p></table></b>text</td>",
		"entities":       strings.Repeat("&amp;&lt;&#95;&quot; ", 6000),
		"backslashes":    strings.Repeat(`a\b*c_ `, 9000),
		"newlines":       strings.Repeat("line\n", 30000),
		"huge attribute": `<p title="` + strings.Repeat("x", 60000) + `">t</p>`,
		"markdown":       "**bold** and _it_\n\n- a\n- b",
	}
	titles := []string{"", "t\"itle\\ with \n newline <b>", strings.Repeat("long title ", 500)}
	for name, desc := range descs {
		for _, format := range []string{formatConnector, formatWorkflow} {
			for _, title := range titles {
				var b built
				if format == formatConnector {
					b = buildConnector(sdk.Message{Title: title, Description: desc}, 8<<10, 99)
				} else {
					b = buildWorkflow(sdk.Message{Title: title, Description: desc}, 8<<10, 99)
				}
				if len(b.bodies) == 0 {
					t.Fatalf("%s %s: no body", name, format)
				}
				for i, body := range b.bodies {
					if !json.Valid(body) {
						t.Fatalf("%s %s part %d: invalid JSON", name, format, i+1)
					}
					if len(body) > 8<<10 {
						t.Errorf("%s %s part %d: %d bytes", name, format, i+1, len(body))
					}
				}
			}
		}
	}
}

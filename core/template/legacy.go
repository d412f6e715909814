package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/sdk"
)

// LegacyScanRenderers are the values of legacy-scan-renderer: Go renderers
// of Aqua image scans in the layouts of the original postee's first
// versions.
var LegacyScanRenderers = []string{"html", "slack", "jira"}

// legacyRenderer renders Aqua image scans with Go code rather than Rego.
type legacyRenderer struct {
	kind string
	// format lays out a scan; link is the scan's page in the Aqua console
	// ("" when unknown).
	format func(s *aquaScan, link string) string
	// join combines messages for Aggregate.
	join func(items []sdk.Message) string
}

func newLegacyRenderer(template, kind string) (*Renderer, error) {
	l := &legacyRenderer{kind: kind}
	switch kind {
	case "html":
		l.format, l.join = legacyHTML, joinHTML
	case "slack":
		l.format, l.join = legacySlack, joinSlack
	case "jira":
		l.format, l.join = legacyJira, joinJira
	default:
		return nil, &Error{Template: template, Source: "legacy-scan-renderer " + strconv.Quote(kind),
			Message: "unknown renderer; use " + strings.Join(LegacyScanRenderers, ", ")}
	}
	return &Renderer{name: template, legacy: l}, nil
}

// aquaScan is the part of an Aqua image scan the legacy renderers show.
type aquaScan struct {
	Image    string `json:"image"`
	Registry string `json:"registry"`
	Digest   string `json:"digest"`
	OS       string `json:"os"`
	Version  string `json:"version"`
	Summary  struct {
		Critical   int `json:"critical"`
		High       int `json:"high"`
		Medium     int `json:"medium"`
		Low        int `json:"low"`
		Negligible int `json:"negligible"`
		Sensitive  int `json:"sensitive"`
		Malware    int `json:"malware"`
	} `json:"vulnerability_summary"`
	Assurance *struct {
		Disallowed bool `json:"disallowed"`
		Checks     []struct {
			Control    string `json:"control"`
			PolicyName string `json:"policy_name"`
			Failed     bool   `json:"failed"`
		} `json:"checks_performed"`
	} `json:"image_assurance_results"`
	Options *struct {
		Malware   bool `json:"scan_malware"`
		Sensitive bool `json:"scan_sensitive_data"`
	} `json:"scan_options"`
	Resources []struct {
		Resource struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Format  string `json:"format"`
			Path    string `json:"path"`
		} `json:"resource"`
		Vulnerabilities []aquaVuln `json:"vulnerabilities"`
	} `json:"resources"`
	Postee struct {
		AquaServer string `json:"AquaServer"`
	} `json:"postee"`
}

type aquaVuln struct {
	Name             string `json:"name"`
	Version          string `json:"version"`
	InstalledVersion string `json:"installed_version"`
	FixVersion       string `json:"fix_version"`
	AquaSeverity     string `json:"aqua_severity"`
	NVDSeverity      string `json:"nvd_severity"`
	VendorSeverity   string `json:"vendor_severity"`
	Severity         string `json:"severity"`
	NVDURL           string `json:"nvd_url"`
	VendorURL        string `json:"vendor_url"`
	Description      string `json:"description"`
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func (v *aquaVuln) severity() string {
	s := strings.ToLower(firstNonEmpty(v.AquaSeverity, v.NVDSeverity, v.VendorSeverity, v.Severity))
	if s == "" {
		return "unknown"
	}
	return s
}

func (v *aquaVuln) link() string {
	return firstNonEmpty(safeURL(v.NVDURL), safeURL(v.VendorURL), vulnerabilityLink(v.Name))
}

// safeURL is u when it is an http(s) URL, the scheme in any case as
// postee.lib.links.safe accepts it, else "" (no javascript: links).
func safeURL(u string) string {
	if isHTTPURL(u) {
		return u
	}
	return ""
}

// vulnerabilityLink is the advisory page of a CVE or GHSA id, "" for
// others (as postee.lib.links.vulnerability).
func vulnerabilityLink(id string) string {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return "https://nvd.nist.gov/vuln/detail/" + url.PathEscape(id)
	case strings.HasPrefix(id, "GHSA-"):
		return "https://github.com/advisories/" + url.PathEscape(id)
	}
	return ""
}

// aquaImageLink is the image's page in the Aqua console, ""
// without a server (as postee.lib.links.aqua_image).
func aquaImageLink(server, registry, image string) string {
	if server == "" || image == "" {
		return ""
	}
	return server + url.QueryEscape(registry) + "/" + url.QueryEscape(image)
}

var errNotAquaScan = errors.New("the event is not an Aqua image scan (it has no image)")

func (l *legacyRenderer) render(template string, input ast.Value) (sdk.Message, error) {
	where := "legacy-scan-renderer " + strconv.Quote(l.kind)
	x, err := ast.JSON(input)
	if err != nil {
		return sdk.Message{}, &Error{Template: template, Source: where, Message: err.Error()}
	}
	b, err := json.Marshal(x)
	if err != nil {
		return sdk.Message{}, &Error{Template: template, Source: where, Message: err.Error()}
	}
	var s aquaScan
	// Fields of an unexpected type keep their zero value: render what is
	// there.
	if err := json.Unmarshal(b, &s); err != nil {
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			return sdk.Message{}, &Error{Template: template, Source: where, Message: err.Error()}
		}
	}
	if s.Image == "" {
		return sdk.Message{}, &Error{Template: template, Source: where, Message: errNotAquaScan.Error()}
	}
	link := aquaImageLink(s.Postee.AquaServer, s.Registry, s.Image)
	msg := sdk.Message{
		Title:       s.Image + " vulnerability scan report",
		Description: l.format(&s, link),
		URL:         link,
		Severity:    s.topSeverity(),
	}
	return msg, nil
}

func (l *legacyRenderer) aggregate(items []sdk.Message) sdk.Message {
	var urls []string
	for _, m := range items {
		if m.URL != "" {
			urls = append(urls, m.URL)
		}
	}
	return sdk.Message{Title: "Vulnerability scan report", Description: l.join(items), URL: strings.Join(urls, "\n")}
}

func (s *aquaScan) topSeverity() string {
	for _, c := range s.counts() {
		if c.n > 0 {
			return c.name
		}
	}
	return ""
}

type severityCount struct {
	name, label string
	n           int
}

func (s *aquaScan) counts() []severityCount {
	return []severityCount{
		{"critical", "Critical", s.Summary.Critical},
		{"high", "High", s.Summary.High},
		{"medium", "Medium", s.Summary.Medium},
		{"low", "Low", s.Summary.Low},
		{"negligible", "Negligible", s.Summary.Negligible},
	}
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// facts are the lines under the image name: compliance, malware, sensitive
// data.
func (s *aquaScan) facts() []string {
	var out []string
	if s.Assurance != nil {
		if s.Assurance.Disallowed {
			out = append(out, "Image is non-compliant")
		} else {
			out = append(out, "Image is compliant")
		}
	}
	if s.Options != nil {
		if s.Options.Malware {
			out = append(out, "Malware found: "+yesNo(s.Summary.Malware > 0))
		}
		if s.Options.Sensitive {
			out = append(out, "Sensitive data found: "+yesNo(s.Summary.Sensitive > 0))
		}
	}
	return out
}

// legacyVuln is one row of the vulnerability tables.
type legacyVuln struct {
	id, severity, installed, fixed, link, description string
}

var severityRank = map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3, "negligible": 4}

func rank(sev string) int {
	if r, ok := severityRank[sev]; ok {
		return r
	}
	return len(severityRank)
}

// vulns returns a resource's vulnerabilities, the most severe first.
func vulns(resourceVersion string, list []aquaVuln) []legacyVuln {
	out := make([]legacyVuln, 0, len(list))
	for i := range list {
		v := &list[i]
		out = append(out, legacyVuln{
			id:          v.Name,
			severity:    v.severity(),
			installed:   firstNonEmpty(v.Version, v.InstalledVersion, resourceVersion),
			fixed:       v.FixVersion,
			link:        v.link(),
			description: v.Description,
		})
	}
	slices.SortStableFunc(out, func(a, b legacyVuln) int { return rank(a.severity) - rank(b.severity) })
	return out
}

// --- html ---

const (
	htmlTable = `<table style="border-collapse: collapse;" border="1" cellpadding="4">` + "\n"
	htmlTH    = `<th style="text-align: left;">`
)

func legacyHTML(s *aquaScan, link string) string {
	e := html.EscapeString
	var b strings.Builder
	fmt.Fprintf(&b, "<p><b>Image name:</b> %s</p>\n", e(s.Image))
	fmt.Fprintf(&b, "<p><b>Registry:</b> %s</p>\n", e(s.Registry))
	if s.Digest != "" {
		fmt.Fprintf(&b, "<p><b>Digest:</b> %s</p>\n", e(s.Digest))
	}
	for _, f := range s.facts() {
		fmt.Fprintf(&b, "<p>%s</p>\n", f)
	}
	b.WriteString("<h3>Vulnerability summary</h3>\n" + htmlTable + "<tr>")
	for _, c := range s.counts() {
		b.WriteString(htmlTH + c.label + "</th>")
	}
	b.WriteString("</tr>\n<tr>")
	for _, c := range s.counts() {
		fmt.Fprintf(&b, "<td>%d</td>", c.n)
	}
	b.WriteString("</tr>\n</table>\n")
	if s.Assurance != nil && len(s.Assurance.Checks) > 0 {
		b.WriteString("<h3>Assurance controls</h3>\n" + htmlTable)
		b.WriteString("<tr>" + htmlTH + "#</th>" + htmlTH + "Control</th>" + htmlTH + "Policy name</th>" + htmlTH + "Status</th></tr>\n")
		for i, c := range s.Assurance.Checks {
			status := "PASS"
			if c.Failed {
				status = "FAIL"
			}
			fmt.Fprintf(&b, "<tr><td>%d</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", i+1, e(c.Control), e(c.PolicyName), status)
		}
		b.WriteString("</table>\n")
	}
	if len(s.Resources) > 0 {
		b.WriteString("<h3>Found vulnerabilities</h3>\n")
	}
	for _, r := range s.Resources {
		name := strings.TrimSpace(r.Resource.Name + " " + r.Resource.Version)
		if r.Resource.Path != "" {
			name += " (" + r.Resource.Path + ")"
		}
		fmt.Fprintf(&b, "<h4>%s</h4>\n", e(name))
		b.WriteString(htmlTable + "<tr>" + htmlTH + "ID</th>" + htmlTH + "Severity</th>" + htmlTH + "Installed version</th>" +
			htmlTH + "Fixed version</th>" + htmlTH + "Description</th></tr>\n")
		for _, v := range vulns(r.Resource.Version, r.Vulnerabilities) {
			id := e(v.id)
			if v.link != "" {
				id = fmt.Sprintf(`<a href="%s">%s</a>`, e(v.link), id)
			}
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
				id, e(v.severity), e(v.installed), e(firstNonEmpty(v.fixed, "none")), e(v.description))
		}
		b.WriteString("</table>\n")
	}
	if link != "" {
		fmt.Fprintf(&b, "<p>See more: <a href=\"%s\">%s</a></p>\n", e(link), e(link))
	}
	return b.String()
}

func joinHTML(items []sdk.Message) string {
	var b strings.Builder
	for _, m := range items {
		fmt.Fprintf(&b, "<h1>%s</h1>\n%s", html.EscapeString(m.Title), m.Description)
	}
	return b.String()
}

// --- slack ---

// Slack's limits: blocks per message, characters per section text and per
// header.
const (
	slackMaxBlocks  = 50
	slackMaxText    = 3000
	slackMaxHeader  = 150
	slackListBlocks = 40 // for the vulnerability lists; the rest is headers
)

// slackEscape escapes the characters of Slack's mrkdwn control sequences.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

func slackLink(u, text string) string {
	if u = safeURL(u); u == "" || strings.ContainsAny(u, "|<> ") {
		return slackEscape(text)
	}
	return "<" + u + "|" + slackEscape(text) + ">"
}

type block = map[string]any

func mrkdwn(s string) block { return block{"type": "mrkdwn", "text": s} }

func section(s string) block { return block{"type": "section", "text": mrkdwn(s)} }

func truncateRunes(s string, n int) string {
	if len(s) <= n || len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func legacySlack(s *aquaScan, link string) string {
	blocks := []block{
		{"type": "header", "text": block{"type": "plain_text", "text": truncateRunes(s.Image+" vulnerability scan report", slackMaxHeader)}},
	}
	fields := []block{mrkdwn("*Image name:* " + slackEscape(s.Image)), mrkdwn("*Registry:* " + slackEscape(s.Registry))}
	for _, f := range s.facts() {
		fields = append(fields, mrkdwn(f))
	}
	blocks = append(blocks, block{"type": "section", "fields": fields})
	var counts []block
	for _, c := range s.counts() {
		counts = append(counts, mrkdwn(fmt.Sprintf("*%s:* %d", c.label, c.n)))
	}
	blocks = append(blocks, block{"type": "section", "fields": counts}, block{"type": "divider"})

	// One line per vulnerability, grouped by resource, in sections of at
	// most slackMaxText characters; what does not fit in the block budget
	// is counted at the end.
	var lines []string
	for _, r := range s.Resources {
		for _, v := range vulns(r.Resource.Version, r.Vulnerabilities) {
			fix := "no fix"
			if v.fixed != "" {
				fix = "fixed in " + slackEscape(v.fixed)
			}
			lines = append(lines, truncateRunes(fmt.Sprintf("• %s *%s* `%s` %s, %s", slackLink(v.link, v.id), v.severity,
				slackEscape(r.Resource.Name), slackEscape(v.installed), fix), 300))
		}
	}
	listed := 0
	var cur strings.Builder
	sections := 0
	for _, line := range lines {
		if cur.Len()+len(line)+1 > slackMaxText {
			if sections+1 == slackListBlocks {
				break
			}
			blocks = append(blocks, section(cur.String()))
			sections++
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(line)
		listed++
	}
	if cur.Len() > 0 {
		blocks = append(blocks, section(cur.String()))
	}
	var footer []string
	if n := len(lines) - listed; n > 0 {
		footer = append(footer, fmt.Sprintf("%d more vulnerabilities are not listed.", n))
	}
	if link != "" {
		footer = append(footer, "See more: "+slackLink(link, link))
	}
	if len(footer) > 0 {
		blocks = append(blocks, block{"type": "context", "elements": []block{mrkdwn(strings.Join(footer, " "))}})
	}
	return marshalBlocks(blocks)
}

// marshalBlocks is blocks as compact JSON, with < > & as they are (as
// postee writes non-string results).
func marshalBlocks(blocks any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(blocks) // strings, maps and slices only: cannot fail
	return strings.TrimSuffix(b.String(), "\n")
}

func joinSlack(items []sdk.Message) string {
	all := []any{}
	for i, m := range items {
		if i > 0 {
			all = append(all, block{"type": "divider"})
		}
		var blocks []any
		if err := json.Unmarshal([]byte(m.Description), &blocks); err != nil {
			blocks = []any{section(slackEscape(truncateRunes(m.Description, slackMaxText)))}
		}
		all = append(all, blocks...)
	}
	return marshalBlocks(all)
}

// --- jira ---

// jiraEscape escapes the characters of Jira wiki markup that would change
// the layout of a table cell or text; a new line becomes a space.
var jiraEscape = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "[", `\[`, "]", `\]`, "{", `\{`, "}", `\}`, "*", `\*`, "_", `\_`,
	"^", `\^`, "~", `\~`, "+", `\+`, "!", `\!`, "#", `\#`, "\r\n", " ", "\n", " ", "\r", " ",
).Replace

// jiraURL escapes the characters that end a Jira link.
var jiraURL = strings.NewReplacer("|", "%7C", "[", "%5B", "]", "%5D", " ", "%20", "{", "%7B", "}", "%7D",
	"<", "%3C", ">", "%3E", `"`, "%22").Replace

// jiraCell is s escaped for a table cell, which must not be empty.
func jiraCell(s string) string {
	if strings.TrimSpace(s) == "" {
		return " "
	}
	return jiraEscape(s)
}

func jiraLink(u, text string) string {
	if u = safeURL(u); u == "" {
		return jiraEscape(text)
	}
	return "[" + jiraEscape(text) + "|" + jiraURL(u) + "]"
}

func legacyJira(s *aquaScan, link string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*Image name:* %s\n", jiraEscape(s.Image))
	fmt.Fprintf(&b, "*Registry:* %s\n", jiraEscape(s.Registry))
	for _, f := range s.facts() {
		b.WriteString(f + "\n")
	}
	b.WriteString("\nh3. Vulnerability summary\n")
	for _, c := range s.counts() {
		b.WriteString("||" + c.label)
	}
	b.WriteString("||\n")
	for _, c := range s.counts() {
		fmt.Fprintf(&b, "|%d", c.n)
	}
	b.WriteString("|\n")
	if s.Assurance != nil && len(s.Assurance.Checks) > 0 {
		b.WriteString("\nh3. Assurance controls\n||#||Control||Policy name||Status||\n")
		for i, c := range s.Assurance.Checks {
			status := "PASS"
			if c.Failed {
				status = "FAIL"
			}
			fmt.Fprintf(&b, "|%d|%s|%s|%s|\n", i+1, jiraCell(c.Control), jiraCell(c.PolicyName), status)
		}
	}
	if len(s.Resources) > 0 {
		b.WriteString("\nh3. Found vulnerabilities\n")
	}
	for _, r := range s.Resources {
		name := strings.TrimSpace(r.Resource.Name + " " + r.Resource.Version)
		if r.Resource.Path != "" {
			name += " (" + r.Resource.Path + ")"
		}
		fmt.Fprintf(&b, "\nh4. %s\n||ID||Severity||Installed version||Fixed version||Description||\n", jiraEscape(name))
		for _, v := range vulns(r.Resource.Version, r.Vulnerabilities) {
			fmt.Fprintf(&b, "|%s|%s|%s|%s|%s|\n", jiraLink(v.link, firstNonEmpty(v.id, " ")), jiraCell(v.severity), jiraCell(v.installed),
				jiraCell(firstNonEmpty(v.fixed, "none")), jiraCell(truncateRunes(v.description, 300)))
		}
	}
	if link != "" {
		fmt.Fprintf(&b, "\nSee more: %s\n", jiraLink(link, link))
	}
	return b.String()
}

func joinJira(items []sdk.Message) string {
	var b strings.Builder
	for _, m := range items {
		fmt.Fprintf(&b, "h1. %s\n%s\n", jiraEscape(m.Title), m.Description)
	}
	return b.String()
}

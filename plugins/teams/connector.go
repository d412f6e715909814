package main

import (
	"fmt"
	"html"
	"strings"

	"github.com/postee-dev/postee/sdk"
)

// messageCard is the legacy actionable message card an Office 365
// connector webhook takes.
type messageCard struct {
	Type            string    `json:"@type"`
	Context         string    `json:"@context"`
	Summary         string    `json:"summary"`
	Title           string    `json:"title,omitempty"`
	ThemeColor      string    `json:"themeColor,omitempty"`
	Text            string    `json:"text,omitempty"`
	PotentialAction []openURI `json:"potentialAction,omitempty"`
}

// openURI is a button of a message card that opens a link.
type openURI struct {
	Type    string      `json:"@type"`
	Name    string      `json:"name"`
	Targets []uriTarget `json:"targets"`
}

type uriTarget struct {
	OS  string `json:"os"`
	URI string `json:"uri"`
}

const (
	// maxTitle bounds the title (bytes); maxSummary the card's summary,
	// the text of notifications.
	maxTitle   = 1000
	maxSummary = 250
	// maxLinks bounds the buttons (a message card shows at most 4).
	maxLinks = 4
	// partMark is the longest title suffix, reserved when measuring.
	partMark = " (part 99/99)"
)

// severityColors are the card accent colors of the message's severity.
var severityColors = map[string]string{
	"critical":   "C00000",
	"high":       "E0443D",
	"medium":     "F79421",
	"low":        "B8A000",
	"negligible": "548235",
	"info":       "548235",
	"unknown":    "7F7F7F",
}

// connectorText is the description as the HTML text of a card: HTML as
// it is; JSON (the rawmessage.json template) as preformatted text; any
// other text as it is (the connector reads Markdown too).
func connectorText(desc string) (text string, htmlText bool) {
	switch {
	case strings.TrimSpace(desc) == "":
		return "", false
	case isHTML(desc):
		return desc, true
	case isJSON(desc):
		return "<pre>" + html.EscapeString(strings.TrimSpace(desc)) + "</pre>", true
	}
	return desc, false
}

// buildConnector turns the message into MessageCard bodies of at most
// limit bytes each (the text split between them), at most maxParts.
func buildConnector(m sdk.Message, limit, maxParts int) built {
	title := oneLine(strings.ToValidUTF8(m.Title, "\uFFFD"), maxTitle)
	card := messageCard{
		Type:       "MessageCard",
		Context:    "https://schema.org/extensions",
		Summary:    oneLine(title, maxSummary),
		ThemeColor: severityColors[strings.ToLower(strings.TrimSpace(m.Severity))],
	}
	if card.Summary == "" {
		card.Summary = "postee message"
	}
	for _, u := range messageLinks(m.URL, maxLinks) {
		name := "Open"
		if len(card.PotentialAction) > 0 {
			name = fmt.Sprintf("Open %d", len(card.PotentialAction)+1)
		}
		card.PotentialAction = append(card.PotentialAction, openURI{Type: "OpenUri", Name: name, Targets: []uriTarget{{OS: "default", URI: u}}})
	}
	escTitle := markdownEntities.Replace(html.EscapeString(title))
	cardTitle := func(part string) string {
		if title == "" {
			return strings.TrimSpace(part)
		}
		return escTitle + part
	}

	text, htmlText := connectorText(strings.ToValidUTF8(m.Description, "\uFFFD"))
	var toks []htok
	if htmlText {
		toks = tokenizeHTML(text)
		var b strings.Builder
		for _, t := range toks {
			b.WriteString(t.raw)
		}
		text = b.String()
	}
	card.Title = cardTitle("")
	card.Text = text
	if body := marshal(card); len(body) <= limit {
		return built{bodies: [][]byte{body}}
	}

	// Too large: split the text.
	card.Title, card.Text = cardTitle(partMark), ""
	room := limit - jsonSize(card) - len(`,"text":""`) - noteReserve
	if room < 256 {
		room = 256
	}
	var texts []string
	if htmlText {
		texts = splitHTML(toks, room)
	} else {
		texts = splitText(text, room, false)
	}
	omitted := 0
	if len(texts) > maxParts {
		omitted = len(texts) - maxParts
		texts = texts[:maxParts]
		texts[maxParts-1] += connectorNote(omitted, len(card.PotentialAction) > 0, htmlText)
	}
	out := built{omitted: omitted}
	for i, t := range texts {
		card.Title = cardTitle("")
		if len(texts) > 1 {
			card.Title = cardTitle(fmt.Sprintf(" (part %d/%d)", i+1, len(texts)))
		}
		card.Text = t
		out.bodies = append(out.bodies, marshal(card))
	}
	return out
}

// connectorNote says that parts were left out.
func connectorNote(omitted int, link, htmlText bool) string {
	s := fmt.Sprintf("This message was too long for Teams: %d more part(s) were not sent.", omitted)
	if link {
		s += " Use the Open button for the whole report."
	}
	if htmlText {
		return "<p><b>" + s + "</b></p>"
	}
	return "\n\n**" + s + "**"
}

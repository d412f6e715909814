package main

import (
	"fmt"
	"strings"

	"github.com/postee-dev/postee/sdk"
)

// workflowMessage is what a Workflows webhook ("Post to a channel when a
// webhook request is received") takes: a message with Adaptive Cards.
type workflowMessage struct {
	Type        string       `json:"type"` // message
	Attachments []attachment `json:"attachments"`
}

type attachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"` // null
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string            `json:"$schema"`
	Type    string            `json:"type"` // AdaptiveCard
	Version string            `json:"version"`
	Body    []any             `json:"body"`
	Actions []openURL         `json:"actions,omitempty"`
	MSTeams map[string]string `json:"msteams,omitempty"`
}

type openURL struct {
	Type  string `json:"type"` // Action.OpenUrl
	Title string `json:"title"`
	URL   string `json:"url"`
}

const (
	adaptiveCardType = "application/vnd.microsoft.card.adaptive"
	// cardVersion is the Adaptive Card version written: 1.5 has Table,
	// which Teams renders.
	cardVersion = "1.5"
	cardSchema  = "http://adaptivecards.io/schemas/adaptive-card.json"
)

// titleColors are the colors of the card's title by the message severity.
var titleColors = map[string]string{
	"critical": "Attention",
	"high":     "Attention",
	"medium":   "Warning",
	"low":      "Warning",
}

// workflowElements is the description as card elements: HTML converted;
// JSON as a monospace TextBlock; any other text as a TextBlock of Markdown,
// as it is.
func workflowElements(desc string) []any {
	switch {
	case strings.TrimSpace(desc) == "":
		return nil
	case isHTML(desc):
		return htmlToElements(desc)
	case isJSON(desc):
		return []any{textBlock{Type: "TextBlock", Text: mdEscape.Replace(strings.TrimSpace(desc)), Wrap: true, FontType: "Monospace"}}
	}
	return []any{textBlock{Type: "TextBlock", Text: strings.TrimSpace(desc), Wrap: true}}
}

// buildWorkflow turns the message into Workflows bodies of at most limit
// bytes each (the card body split between them), at most maxParts.
func buildWorkflow(m sdk.Message, limit, maxParts int) built {
	title := oneLine(strings.ToValidUTF8(m.Title, "\uFFFD"), maxTitle)
	titleColor := titleColors[strings.ToLower(strings.TrimSpace(m.Severity))]
	var actions []openURL
	for _, u := range messageLinks(m.URL, maxLinks) {
		name := "Open"
		if len(actions) > 0 {
			name = fmt.Sprintf("Open %d", len(actions)+1)
		}
		actions = append(actions, openURL{Type: "Action.OpenUrl", Title: name, URL: u})
	}
	message := func(part string, body []any) []byte {
		var all []any
		if t := strings.TrimSpace(mdEscape.Replace(title) + part); t != "" {
			all = append(all, textBlock{Type: "TextBlock", Text: t, Wrap: true, Size: "Large", Weight: "Bolder", Color: titleColor})
		}
		all = append(all, body...)
		return marshal(workflowMessage{Type: "message", Attachments: []attachment{{
			ContentType: adaptiveCardType,
			Content: adaptiveCard{Schema: cardSchema, Type: "AdaptiveCard", Version: cardVersion,
				Body: all, Actions: actions, MSTeams: map[string]string{"width": "Full"}},
		}}})
	}

	elems := workflowElements(strings.ToValidUTF8(m.Description, "\uFFFD"))
	if body := message("", elems); len(body) <= limit {
		return built{bodies: [][]byte{body}}
	}

	// Too large: split the elements between cards.
	room := limit - len(message(partMark, nil)) - noteReserve
	if room < 256 {
		room = 256
	}
	var pieces []any
	for _, e := range elems {
		pieces = append(pieces, splitElement(e, room)...)
	}
	var cards [][]any
	var cur []any
	size := 0
	for _, e := range pieces {
		n := jsonSize(e) + 1
		if len(cur) > 0 && size+n > room {
			cards = append(cards, cur)
			cur, size = nil, 0
		}
		cur = append(cur, e)
		size += n
	}
	if len(cur) > 0 {
		cards = append(cards, cur)
	}
	omitted := 0
	if len(cards) > maxParts {
		omitted = len(cards) - maxParts
		cards = cards[:maxParts]
		s := fmt.Sprintf("This message was too long for Teams: %d more part(s) were not sent.", omitted)
		if len(actions) > 0 {
			s += " Use the Open button for the whole report."
		}
		cards[maxParts-1] = append(cards[maxParts-1], textBlock{Type: "TextBlock", Text: s, Wrap: true, Weight: "Bolder", Color: "Warning", Separator: true})
	}
	out := built{omitted: omitted}
	for i, c := range cards {
		part := ""
		if len(cards) > 1 {
			part = fmt.Sprintf(" (part %d/%d)", i+1, len(cards))
		}
		out.bodies = append(out.bodies, message(part, c))
	}
	return out
}

// splitElement cuts an element over room JSON bytes into several: a
// TextBlock by its text, a Table by its rows (the header row repeated).
func splitElement(e any, room int) []any {
	if jsonSize(e) <= room {
		return []any{e}
	}
	switch el := e.(type) {
	case textBlock:
		overhead := jsonSize(textBlock{Type: el.Type, Wrap: el.Wrap, Size: el.Size, Weight: el.Weight, Color: el.Color,
			IsSubtle: el.IsSubtle, FontType: el.FontType, Separator: el.Separator})
		var out []any
		for i, t := range splitText(el.Text, room-overhead, false) {
			tb := el
			tb.Text = t
			if i > 0 {
				tb.Separator = false
			}
			out = append(out, tb)
		}
		return out
	case table:
		var header []tableRow
		rows := el.Rows
		if el.FirstRowAsHeader && len(rows) > 0 {
			header, rows = rows[:1], rows[1:]
		}
		var out []any
		cur := el
		cur.Rows = append([]tableRow(nil), header...)
		size := jsonSize(cur)
		flush := func() {
			if len(cur.Rows) > len(header) {
				out = append(out, cur)
			}
			cur = el
			cur.Separator = false
			cur.Rows = append([]tableRow(nil), header...)
			size = jsonSize(cur)
		}
		for _, r := range rows {
			n := jsonSize(r) + 1
			if size+n > room && len(cur.Rows) > len(header) {
				flush()
			}
			if size+n > room {
				// A row alone is too large: its cells as text.
				flush()
				out = append(out, rowText(r, room)...)
				continue
			}
			cur.Rows = append(cur.Rows, r)
			size += n
		}
		flush()
		return out
	}
	return []any{e}
}

// rowText is a table row too large for a card as TextBlocks of its cells.
func rowText(r tableRow, room int) []any {
	var out []any
	for _, c := range r.Cells {
		for _, tb := range c.Items {
			if strings.TrimSpace(tb.Text) != "" {
				out = append(out, splitElement(tb, room)...)
			}
		}
	}
	return out
}

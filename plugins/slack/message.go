package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/postee-dev/postee/sdk"
)

// Slack's limits on one message.
const (
	maxBlocks      = 50     // blocks per message
	maxSectionText = 3000   // characters of a section block's text object
	maxFields      = 10     // fields of a section block
	maxMessageText = 40_000 // characters of a message's top-level text
)

// escape escapes the characters of Slack's control sequences (links,
// mentions) in text that is not Block Kit already.
var escape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// blockTypes are the Block Kit block types: a lone JSON object is taken as
// one block only when its type is one of them.
var blockTypes = map[string]bool{
	"actions": true, "call": true, "context": true, "context_actions": true, "divider": true,
	"file": true, "header": true, "image": true, "input": true, "markdown": true,
	"rich_text": true, "section": true, "table": true, "video": true,
}

// payloadKeys are the keys of a message an incoming webhook takes: a JSON
// object with only these keys (and text, blocks or attachments among them)
// is taken as a complete message.
var payloadKeys = map[string]bool{
	"text": true, "blocks": true, "attachments": true, "mrkdwn": true, "username": true,
	"icon_emoji": true, "icon_url": true, "channel": true, "unfurl_links": true,
	"unfurl_media": true, "thread_ts": true, "reply_broadcast": true, "link_names": true,
	"parse": true, "metadata": true, "response_type": true, "replace_original": true,
	"delete_original": true,
}

// content is what a description holds.
type content struct {
	// blocks are the Block Kit blocks as written (nil: none).
	blocks []json.RawMessage
	// payload holds the other keys of a complete message (nil when the
	// description is blocks or text).
	payload map[string]json.RawMessage
	// hasText: payload has its own top-level text.
	text    string
	hasText bool
	// plain is set when the description is not Block Kit: it is sent as
	// text; json when that text is JSON (shown as a code block).
	plain bool
	json  bool
}

// parseDescription tells Block Kit from text. Block Kit is a JSON array of
// blocks, one block object, the "blocks with trailing commas" form of the
// original legacy renderer, or a complete message object.
func parseDescription(desc string) content {
	s := strings.TrimSpace(desc)
	if s == "" {
		return content{plain: true}
	}
	if blocks, ok := blockList([]byte(s)); ok {
		return content{blocks: blocks}
	}
	if strings.HasPrefix(s, "{") {
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &obj) == nil {
			if c, ok := messageObject(obj); ok {
				return c
			}
			if isBlock([]byte(s), true) {
				return content{blocks: []json.RawMessage{json.RawMessage(s)}}
			}
			return content{plain: true, json: true}
		}
		// `{block},{block},` as the original legacy renderer wrote.
		if blocks, ok := blockList([]byte("[" + strings.TrimSuffix(s, ",") + "]")); ok {
			return content{blocks: blocks}
		}
	}
	return content{plain: true, json: json.Valid([]byte(s))}
}

// blockList decodes a JSON array whose every element is a block object.
func blockList(data []byte) ([]json.RawMessage, bool) {
	if len(data) == 0 || data[0] != '[' {
		return nil, false
	}
	var list []json.RawMessage
	if json.Unmarshal(data, &list) != nil {
		return nil, false
	}
	for _, b := range list {
		if !isBlock(b, false) {
			return nil, false
		}
	}
	if list == nil {
		list = []json.RawMessage{}
	}
	return list, true
}

// isBlock reports whether raw is an object with a string type (one of
// blockTypes when known is set).
func isBlock(raw json.RawMessage, known bool) bool {
	var b struct {
		Type *string `json:"type"`
	}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.TrimSpace(raw)[0] != '{' || json.Unmarshal(raw, &b) != nil || b.Type == nil || *b.Type == "" {
		return false
	}
	return !known || blockTypes[*b.Type]
}

// messageObject takes obj as a complete message when all its keys are a
// webhook message's, text is a string, blocks a list of blocks.
func messageObject(obj map[string]json.RawMessage) (content, bool) {
	c := content{payload: map[string]json.RawMessage{}}
	found := false
	for k, v := range obj {
		if !payloadKeys[k] {
			return content{}, false
		}
		switch k {
		case "text":
			if json.Unmarshal(v, &c.text) != nil {
				return content{}, false
			}
			c.hasText, found = true, true
		case "blocks":
			blocks, ok := blockList(bytes.TrimSpace(v))
			if !ok {
				return content{}, false
			}
			c.blocks, found = blocks, true
		case "attachments":
			found = true
			c.payload[k] = v
		default:
			c.payload[k] = v
		}
	}
	return c, found
}

// buildParts turns a rendered message into the JSON bodies of the
// webhook requests that deliver it, in order: one, or more when the
// content exceeds Slack's limits.
func buildParts(msg sdk.Message) ([][]byte, error) {
	c := parseDescription(msg.Description)
	title := strings.TrimSpace(msg.Title)
	if c.plain {
		return textParts(title, msg.Description, c.json)
	}
	blocks := c.blocks
	// The original postee put the title first as a bold section; the
	// bundled templates begin with a header block of the title already.
	if c.payload == nil && title != "" && !startsWithHeader(blocks) {
		tb, err := marshal(map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": "*" + escape(title) + "*"}})
		if err != nil {
			return nil, err
		}
		blocks = append([]json.RawMessage{tb}, blocks...)
	}
	var err error
	if blocks, err = fitBlocks(blocks); err != nil {
		return nil, err
	}
	if len(blocks) == 0 {
		if c.payload != nil && (c.hasText || c.payload["attachments"] != nil) {
			return textPayloads(c.payload, c.text)
		}
		return nil, errors.New("nothing to send: the title and the description are empty")
	}
	// The top-level text is the notification text with blocks.
	fallback, own := c.text, c.hasText
	if !own {
		fallback = escape(title)
	}
	fallback = cutText(fallback, maxMessageText)
	chunks := chunkBlocks(blocks)
	parts := make([][]byte, 0, len(chunks))
	for i, chunk := range chunks {
		p := map[string]any{}
		for k, v := range c.payload {
			if k != "attachments" || i == 0 {
				p[k] = v
			}
		}
		p["blocks"] = chunk
		text := fallback
		if !own && len(chunks) > 1 && text != "" {
			text = fmt.Sprintf("%s (%d/%d)", text, i+1, len(chunks))
		}
		if text != "" {
			p["text"] = text
		}
		body, err := marshal(p)
		if err != nil {
			return nil, err
		}
		parts = append(parts, body)
	}
	return parts, nil
}

func startsWithHeader(blocks []json.RawMessage) bool {
	if len(blocks) == 0 {
		return false
	}
	var b struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(blocks[0], &b) == nil && b.Type == "header"
}

// textParts is a description that is not Block Kit, sent as message text
// after the title in bold, escaped, in as many messages as its length
// needs. JSON is shown as a code block.
func textParts(title, desc string, isJSON bool) ([][]byte, error) {
	desc = strings.TrimRight(desc, " \t\r\n")
	var b strings.Builder
	if title != "" {
		b.WriteString("*" + escape(title) + "*")
	}
	if strings.TrimSpace(desc) != "" {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		if isJSON {
			b.WriteString("```\n" + escape(desc) + "\n```")
		} else {
			b.WriteString(escape(desc))
		}
	}
	if b.Len() == 0 {
		return nil, errors.New("nothing to send: the title and the description are empty")
	}
	return textPayloads(nil, b.String())
}

// textPayloads is a message of top-level text (and the payload's other
// keys), split at maxMessageText characters; attachments go with the first.
func textPayloads(extra map[string]json.RawMessage, text string) ([][]byte, error) {
	pieces := splitText(text, maxMessageText, true)
	if len(pieces) == 0 {
		pieces = []string{""}
	}
	parts := make([][]byte, 0, len(pieces))
	for i, t := range pieces {
		p := map[string]any{}
		for k, v := range extra {
			if k != "attachments" || i == 0 {
				p[k] = v
			}
		}
		if t != "" {
			p["text"] = t
		}
		body, err := marshal(p)
		if err != nil {
			return nil, err
		}
		parts = append(parts, body)
	}
	return parts, nil
}

// chunkBlocks groups blocks into messages of at most maxBlocks.
func chunkBlocks(blocks []json.RawMessage) [][]json.RawMessage {
	var out [][]json.RawMessage
	for len(blocks) > maxBlocks {
		out = append(out, blocks[:maxBlocks])
		blocks = blocks[maxBlocks:]
	}
	return append(out, blocks)
}

// marshal is v as compact JSON, with < > & as they are.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode the message: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

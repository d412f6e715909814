package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// fitBlocks returns blocks with every section block that exceeds Slack's
// limits (text over maxSectionText characters, more than maxFields fields)
// replaced by several section blocks that don't. Other blocks are kept
// byte for byte.
func fitBlocks(blocks []json.RawMessage) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(blocks))
	for i, raw := range blocks {
		fit, err := fitSection(raw)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", i+1, err)
		}
		out = append(out, fit...)
	}
	return out, nil
}

// fitSection splits one section block when it is too large: the text
// becomes several sections (at line ends where possible), the first one
// keeping every other field of the block (block_id, accessory, ...); the
// fields go with the last text, ten per section.
func fitSection(raw json.RawMessage) ([]json.RawMessage, error) {
	var probe struct {
		Type string `json:"type"`
		Text *struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"text"`
		Fields []json.RawMessage `json:"fields"`
	}
	if json.Unmarshal(raw, &probe) != nil || probe.Type != "section" {
		return []json.RawMessage{raw}, nil
	}
	longText := probe.Text != nil && textLen(probe.Text.Text) > maxSectionText
	if !longText && len(probe.Fields) <= maxFields {
		return []json.RawMessage{raw}, nil
	}
	var block map[string]json.RawMessage
	if err := json.Unmarshal(raw, &block); err != nil {
		return nil, err
	}
	var pieces []string
	var textObj map[string]json.RawMessage
	if longText {
		if err := json.Unmarshal(block["text"], &textObj); err != nil {
			return nil, err
		}
		pieces = splitText(probe.Text.Text, maxSectionText, probe.Text.Type == "mrkdwn")
	}
	var fieldChunks [][]json.RawMessage
	for f := probe.Fields; len(f) > 0; {
		n := min(len(f), maxFields)
		fieldChunks = append(fieldChunks, f[:n])
		f = f[n:]
	}
	delete(block, "fields")

	var out []map[string]any
	if !longText {
		first := map[string]any{}
		for k, v := range block {
			first[k] = v
		}
		out = append(out, first)
	}
	for i, p := range pieces {
		b := map[string]any{"type": "section"}
		if i == 0 {
			for k, v := range block {
				b[k] = v
			}
		}
		t := map[string]any{}
		for k, v := range textObj {
			t[k] = v
		}
		t["text"] = p
		b["text"] = t
		out = append(out, b)
	}
	for i, chunk := range fieldChunks {
		if i == 0 {
			out[len(out)-1]["fields"] = chunk
			continue
		}
		out = append(out, map[string]any{"type": "section", "fields": chunk})
	}
	res := make([]json.RawMessage, 0, len(out))
	for _, b := range out {
		data, err := marshal(b)
		if err != nil {
			return nil, err
		}
		res = append(res, data)
	}
	return res, nil
}

// textLen counts characters as Slack may: in UTF-16 code units, so that
// characters outside the BMP (most emoji) count twice.
func textLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16Len(r)
	}
	return n
}

func utf16Len(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// prefixBytes is the length in bytes of the longest prefix of s of at most
// max characters (textLen).
func prefixBytes(s string, max int) int {
	n := 0
	for i, r := range s {
		n += utf16Len(r)
		if n > max {
			return i
		}
	}
	return len(s)
}

const fence = "```"

// splitText cuts s into pieces of at most max characters, in order: at the
// last line end that leaves the piece at least a quarter full, else at the
// last space, else anywhere between two characters. The line end or space
// at a cut is dropped. In mrkdwn, a code block cut in two is closed at the
// end of one piece and opened again at the start of the next.
func splitText(s string, max int, mrkdwn bool) []string {
	var out []string
	room := max
	if mrkdwn {
		room -= len(fence) + 1 // for closing a code block
	}
	for textLen(s) > max {
		limit := prefixBytes(s, room)
		head := s[:limit]
		cut, skip := limit, 0
		if i := strings.LastIndexByte(head, '\n'); i >= limit/4 && i > 0 {
			cut, skip = i, 1
		} else if i := strings.LastIndexByte(head, ' '); i >= limit/4 && i > 0 {
			cut, skip = i, 1
		}
		// Do not cut inside a <link|text> or a mention.
		if lt := strings.LastIndexByte(s[:cut], '<'); lt >= limit/4 && lt > strings.LastIndexByte(s[:cut], '>') && s[cut] != '\n' {
			cut, skip = lt, 0
		}
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		if cut == 0 {
			cut, skip = limit, 0
		}
		piece, rest := s[:cut], s[cut+skip:]
		if mrkdwn && strings.Count(piece, fence)%2 == 1 {
			piece += "\n" + fence
			rest = fence + "\n" + rest
		}
		out = append(out, strings.TrimRight(piece, "\r"))
		s = rest
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

// cutText shortens s to at most max characters, ending it with "…".
func cutText(s string, max int) string {
	if textLen(s) <= max {
		return s
	}
	return s[:prefixBytes(s, max-1)] + "…"
}

// blockCount is the number of blocks in a part, for the result.
func blockCount(part []byte) int {
	var p struct {
		Blocks []json.RawMessage `json:"blocks"`
	}
	if json.Unmarshal(part, &p) != nil {
		return 0
	}
	return len(p.Blocks)
}

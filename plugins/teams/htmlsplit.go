package main

import (
	"strings"

	"golang.org/x/net/html"
)

// htok is one token of an HTML text, as written (Raw), with what splitting
// needs to know about it.
type htok struct {
	raw  string
	kind html.TokenType
	name string // tag name, lower case
	cost int    // jsonLen(raw)
}

// openElem is an element open at some point of the text.
type openElem struct {
	name  string
	raw   string // its start tag, as written
	start int    // index of its start tag
	table *tableInfo
}

// tableInfo is what is known of an open table: its header row, repeated at
// the top of every part the table continues in.
type tableInfo struct {
	header      string // the first row, when it has <th> cells
	headerStart int    // index of that row's <tr>, -1 before it
	rows        int
}

var voidElements = map[string]bool{
	"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true,
	"input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true,
}

// blockElements end a good place to cut.
var blockElements = map[string]bool{
	"p": true, "div": true, "tr": true, "table": true, "h1": true, "h2": true, "h3": true, "h4": true,
	"h5": true, "h6": true, "li": true, "ul": true, "ol": true, "pre": true, "blockquote": true,
	"thead": true, "tbody": true, "tfoot": true, "section": true, "dl": true, "dd": true, "dt": true,
}

// markdownEntities writes the characters Teams' markdown pass of connector
// text would take as markup ("App_Pool_01" loses its underscores) as HTML
// character references, which display as the character.
var markdownEntities = strings.NewReplacer(
	"_", "&#95;", "*", "&#42;", "`", "&#96;", "[", "&#91;", "]", "&#93;", "~", "&#126;", "\\", "&#92;",
)

// tokenizeHTML splits s into tokens; text tokens get markdownEntities.
func tokenizeHTML(s string) []htok {
	z := html.NewTokenizer(strings.NewReader(s))
	var toks []htok
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		t := htok{raw: string(z.Raw()), kind: tt}
		switch tt {
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			t.name = strings.ToLower(string(name))
		case html.TextToken:
			t.raw = markdownEntities.Replace(t.raw)
		}
		t.cost = jsonLen(t.raw)
		toks = append(toks, t)
	}
	return toks
}

// splitHTML cuts the HTML text s into parts of at most limit JSON bytes
// each (as far as a part can be cut: a single tag larger than that stays
// whole). Elements open at a cut are closed at the end of the part and
// opened again at the start of the next one, with a table's header row
// repeated; cuts are made after a block (paragraph, row, table, heading)
// where there is one.
func splitHTML(toks []htok, limit int) []string {
	// Large texts become several tokens, so that a part can end inside
	// them; large tags lose their attributes.
	var in []htok
	for _, t := range toks {
		switch {
		case t.kind == html.TextToken && t.cost > limit/4:
			for _, p := range splitText(t.raw, limit/4, true) {
				in = append(in, htok{raw: p, kind: html.TextToken, cost: jsonLen(p)})
			}
		case t.kind == html.StartTagToken && t.cost > limit/8:
			t.raw = "<" + t.name + ">"
			t.cost = len(t.raw)
			in = append(in, t)
		default:
			in = append(in, t)
		}
	}
	toks = in

	// stacks[i] is the list of elements open after token i.
	stacks := make([][]openElem, len(toks))
	var stack []openElem
	for i, t := range toks {
		switch {
		case t.kind == html.StartTagToken && !voidElements[t.name]:
			e := openElem{name: t.name, raw: t.raw, start: i}
			if t.name == "table" {
				e.table = &tableInfo{headerStart: -1}
			}
			stack = append(stack[:len(stack):len(stack)], e)
		case t.kind == html.EndTagToken:
			for j := len(stack) - 1; j >= 0; j-- {
				if stack[j].name != t.name {
					continue
				}
				if t.name == "tr" {
					noteRow(toks, stack[:j], stack[j].start, i)
				}
				stack = stack[:j:j]
				break
			}
		}
		stacks[i] = stack
	}

	good := func(i int) bool {
		for ; i >= 0; i-- {
			t := toks[i]
			switch {
			case t.kind == html.EndTagToken && blockElements[t.name]:
				return true
			case (t.kind == html.StartTagToken || t.kind == html.SelfClosingTagToken) && (t.name == "br" || t.name == "hr"):
				return true
			case t.kind == html.TextToken && strings.TrimSpace(t.raw) == "":
				continue
			}
			return false
		}
		return false
	}

	var parts []string
	var prefix string
	reopened := map[int]bool{} // start indexes of the elements prefix opens
	open := func(stack []openElem, start int) []openElem {
		var out []openElem
		for _, e := range stack {
			if e.start >= start || reopened[e.start] {
				out = append(out, e)
			}
		}
		return out
	}
	start := 0
	for start < len(toks) {
		cost := jsonLen(prefix)
		end, lastGood := start, -1
		for end < len(toks) {
			if end > start && cost+toks[end].cost+closeCost(open(stacks[end], start)) > limit {
				break
			}
			cost += toks[end].cost
			end++
			if good(end - 1) {
				lastGood = end
			}
		}
		if end < len(toks) && lastGood > start {
			end = lastGood
		}
		var b strings.Builder
		b.WriteString(prefix)
		for _, t := range toks[start:end] {
			b.WriteString(t.raw)
		}
		b.WriteString(closing(open(stacks[end-1], start)))
		parts = append(parts, b.String())
		prefix, reopened = reopening(stacks[end-1], limit)
		start = end
	}
	return parts
}

// noteRow records, when the row from token start to end is the first row
// of the innermost open table, that row as the table's header if it has
// <th> cells.
func noteRow(toks []htok, outer []openElem, start, end int) {
	for j := len(outer) - 1; j >= 0; j-- {
		if outer[j].table == nil {
			continue
		}
		ti := outer[j].table
		ti.rows++
		if ti.rows > 1 {
			return
		}
		var b strings.Builder
		th := false
		for _, t := range toks[start : end+1] {
			if t.kind == html.StartTagToken && t.name == "th" {
				th = true
			}
			b.WriteString(t.raw)
		}
		if th {
			ti.header, ti.headerStart = b.String(), start
		}
		return
	}
}

func closeCost(stack []openElem) int {
	n := 0
	for _, e := range stack {
		n += len(e.name) + 3
	}
	return n
}

// closing closes the elements of stack, innermost first.
func closing(stack []openElem) string {
	var b strings.Builder
	for i := len(stack) - 1; i >= 0; i-- {
		b.WriteString("</" + stack[i].name + ">")
	}
	return b.String()
}

// reopening opens the innermost elements of stack again, as many as fit
// in a quarter of a part with their end tags, with the header row of a
// table (unless the cut is inside that row, or the header would not fit).
// It returns the start tags and the start indexes of the elements opened.
func reopening(stack []openElem, limit int) (string, map[int]bool) {
	from, cost := len(stack), 0
	for from > 0 {
		e := stack[from-1]
		c := jsonLen(e.raw) + len(e.name) + 3
		if cost+c > limit/4 {
			break
		}
		cost += c
		from--
	}
	opened := map[int]bool{}
	var b strings.Builder
	for i := from; i < len(stack); i++ {
		e := stack[i]
		opened[e.start] = true
		b.WriteString(e.raw)
		if e.table == nil || e.table.header == "" {
			continue
		}
		if c := jsonLen(e.table.header); cost+c > limit/4 {
			continue
		} else {
			cost += c
		}
		inHeader := false
		for _, inner := range stack[i+1:] {
			if inner.name == "tr" && inner.start == e.table.headerStart {
				inHeader = true
			}
		}
		if !inHeader {
			b.WriteString(e.table.header)
		}
	}
	return b.String(), opened
}

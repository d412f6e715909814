package main

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
)

// Adaptive Card elements, as far as this plugin writes them.

type textBlock struct {
	Type      string `json:"type"` // TextBlock
	Text      string `json:"text"`
	Wrap      bool   `json:"wrap"`
	Size      string `json:"size,omitempty"`
	Weight    string `json:"weight,omitempty"`
	Color     string `json:"color,omitempty"`
	IsSubtle  bool   `json:"isSubtle,omitempty"`
	FontType  string `json:"fontType,omitempty"`
	Separator bool   `json:"separator,omitempty"`
}

type table struct {
	Type             string     `json:"type"` // Table
	Columns          []column   `json:"columns"`
	Rows             []tableRow `json:"rows"`
	FirstRowAsHeader bool       `json:"firstRowAsHeader"`
	ShowGridLines    bool       `json:"showGridLines"`
	GridStyle        string     `json:"gridStyle,omitempty"`
	Separator        bool       `json:"separator,omitempty"`
}

type column struct {
	Width int `json:"width"`
}

type tableRow struct {
	Type  string      `json:"type"` // TableRow
	Cells []tableCell `json:"cells"`
}

type tableCell struct {
	Type  string      `json:"type"` // TableCell
	Items []textBlock `json:"items"`
}

// mdEscape escapes the characters of Adaptive Card Markdown in text.
var mdEscape = strings.NewReplacer(
	`\`, `\\`, `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`, "`", "\\`", `~`, `\~`,
)

// cardBuilder converts HTML into Adaptive Card elements: headings and
// paragraphs become TextBlocks (Markdown: bold, italics, links, lists),
// tables become Tables, <pre> a monospace TextBlock, a severity color of
// a <span> the TextBlock's color.
type cardBuilder struct {
	out   []any
	buf   []byte // Markdown of the current block
	block textBlock
	color string
	sep   bool
	pre   int
	skip  int // inside script, style, head, title
	marks []mark
	lists []list

	tableDepth int
	tbl        *tableBuild
	cell       *tableCell
	cellTH     bool
}

type mark struct {
	name string
	pos  int
	href string
}

type list struct {
	ordered bool
	n       int
}

type tableBuild struct {
	rows   [][]textBlock
	header []bool // per row: only <th> cells
	row    []textBlock
	allTH  bool
	inRow  bool
}

// htmlToElements converts HTML into Adaptive Card elements.
func htmlToElements(s string) []any {
	b := &cardBuilder{}
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		tok := z.Token()
		switch tt {
		case html.TextToken:
			b.text(tok.Data)
		case html.StartTagToken, html.SelfClosingTagToken:
			b.start(tok, tt == html.SelfClosingTagToken)
		case html.EndTagToken:
			b.end(tok.Data)
		}
	}
	b.finishTable()
	b.flush()
	return b.out
}

func (b *cardBuilder) inCell() bool { return b.cell != nil }

// text adds the text of a text token.
func (b *cardBuilder) text(s string) {
	if b.skip > 0 || (b.tbl != nil && !b.inCell() && b.tableDepth == 1) {
		return
	}
	if b.pre > 0 {
		b.buf = append(b.buf, mdEscape.Replace(s)...)
		return
	}
	lead := s != "" && isSpace(s[0])
	trail := s != "" && isSpace(s[len(s)-1])
	core := strings.Join(strings.Fields(s), " ")
	n := len(b.buf)
	if lead && n > 0 && b.buf[n-1] != ' ' && b.buf[n-1] != '\n' {
		b.buf = append(b.buf, ' ')
	}
	if core == "" {
		return
	}
	b.buf = append(b.buf, mdEscape.Replace(core)...)
	if trail {
		b.buf = append(b.buf, ' ')
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func (b *cardBuilder) start(tok html.Token, selfClosing bool) {
	name := tok.Data
	switch name {
	case "script", "style", "head", "title", "template":
		if !selfClosing {
			b.skip++
		}
		return
	}
	if b.skip > 0 {
		return
	}
	switch name {
	case "h1", "h2", "h3", "h4", "h5", "h6":
		b.blockBreak()
		if !b.inCell() {
			b.block.Weight = "Bolder"
			switch name {
			case "h1", "h2":
				b.block.Size = "Large"
			case "h3":
				b.block.Size = "Medium"
			}
		}
	case "p", "div", "section", "article", "header", "footer", "blockquote", "dl", "dt", "dd", "caption":
		b.blockBreak()
	case "br":
		b.buf = append(b.buf, '\n')
	case "hr":
		b.blockBreak()
		if !b.inCell() {
			b.sep = true
		}
	case "pre":
		b.blockBreak()
		b.pre++
		if !b.inCell() {
			b.block.FontType = "Monospace"
		}
	case "ul", "ol":
		b.newline()
		b.lists = append(b.lists, list{ordered: name == "ol"})
	case "li":
		b.newline()
		if n := len(b.lists); n > 0 {
			l := &b.lists[n-1]
			l.n++
			b.buf = append(b.buf, strings.Repeat("  ", n-1)...)
			if l.ordered {
				b.buf = append(b.buf, strconv.Itoa(l.n)+". "...)
			} else {
				b.buf = append(b.buf, "- "...)
			}
		} else {
			b.buf = append(b.buf, "- "...)
		}
	case "b", "strong":
		b.marks = append(b.marks, mark{name: "**", pos: len(b.buf)})
	case "i", "em":
		b.marks = append(b.marks, mark{name: "_", pos: len(b.buf)})
	case "a":
		b.marks = append(b.marks, mark{name: "a", pos: len(b.buf), href: safeURL(attr(tok, "href"))})
	case "span", "font":
		if c := adaptiveColor(colorOf(tok)); c != "" && b.color == "" {
			b.color = c
		}
	case "img":
		if alt := attr(tok, "alt"); alt != "" {
			b.text(alt)
		}
	case "table":
		b.tableDepth++
		if b.tableDepth == 1 && !b.inCell() {
			b.flush()
			b.tbl = &tableBuild{}
		} else {
			b.newline()
		}
	case "tr":
		if b.tableDepth == 1 && b.tbl != nil {
			b.endRow()
			b.tbl.inRow, b.tbl.allTH = true, true
		} else {
			b.newline()
		}
	case "td", "th":
		if b.tableDepth == 1 && b.tbl != nil {
			b.endCell()
			if !b.tbl.inRow {
				b.tbl.inRow, b.tbl.allTH = true, true
			}
			b.cell = &tableCell{Type: "TableCell"}
			b.cellTH = name == "th"
			if !b.cellTH {
				b.tbl.allTH = false
			}
			b.buf, b.color, b.marks = b.buf[:0], "", nil
		} else if len(b.buf) > 0 && b.buf[len(b.buf)-1] != '\n' {
			b.buf = append(b.buf, " | "...)
		}
	}
}

func (b *cardBuilder) end(name string) {
	switch name {
	case "script", "style", "head", "title", "template":
		if b.skip > 0 {
			b.skip--
		}
		return
	}
	if b.skip > 0 {
		return
	}
	switch name {
	case "h1", "h2", "h3", "h4", "h5", "h6", "p", "div", "section", "article", "header", "footer", "blockquote", "dl", "dt", "dd", "caption":
		b.blockBreak()
	case "pre":
		if b.pre > 0 {
			b.pre--
		}
		b.blockBreak()
	case "ul", "ol":
		if n := len(b.lists); n > 0 {
			b.lists = b.lists[:n-1]
		}
		if len(b.lists) == 0 {
			b.blockBreak()
		}
	case "b", "strong", "i", "em", "a":
		b.closeMark(name)
	case "td", "th":
		if b.tableDepth == 1 {
			b.endCell()
		}
	case "tr":
		if b.tableDepth == 1 {
			b.endRow()
		} else {
			b.newline()
		}
	case "table":
		if b.tableDepth > 0 {
			b.tableDepth--
		}
		if b.tableDepth == 0 {
			b.finishTable()
		} else {
			b.newline()
		}
	}
}

// closeMark closes the innermost open emphasis or link of the kind.
func (b *cardBuilder) closeMark(name string) {
	want := map[string]string{"b": "**", "strong": "**", "i": "_", "em": "_", "a": "a"}[name]
	for j := len(b.marks) - 1; j >= 0; j-- {
		m := b.marks[j]
		if m.name != want {
			continue
		}
		b.marks = b.marks[:j]
		if m.pos > len(b.buf) {
			return
		}
		inner := string(b.buf[m.pos:])
		trimmed := strings.TrimSpace(inner)
		lead := inner[:len(inner)-len(strings.TrimLeft(inner, " \n"))]
		trail := inner[len(strings.TrimRight(inner, " \n")):]
		b.buf = b.buf[:m.pos]
		switch {
		case trimmed == "" && m.name != "a":
			b.buf = append(b.buf, inner...)
		case m.name == "a":
			if m.href == "" {
				b.buf = append(b.buf, inner...)
				return
			}
			if trimmed == "" {
				trimmed = mdEscape.Replace(m.href)
			}
			b.buf = append(b.buf, lead+"["+trimmed+"]("+linkTarget(m.href)+")"+trail...)
		default:
			b.buf = append(b.buf, lead+m.name+trimmed+m.name+trail...)
		}
		return
	}
}

// linkTarget writes a URL so that it ends the Markdown link where it should.
var linkTarget = strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E").Replace

// newline ends the current line of the block (a line break in Markdown).
func (b *cardBuilder) newline() {
	if n := len(b.buf); n > 0 && b.buf[n-1] != '\n' {
		b.buf = append(b.buf, '\n')
	}
}

// blockBreak ends a block: a new TextBlock outside tables, a line break in
// a table cell.
func (b *cardBuilder) blockBreak() {
	if b.inCell() || (b.tbl != nil && b.tableDepth > 0) {
		b.newline()
		return
	}
	b.flush()
}

// flush turns the current block into a TextBlock.
func (b *cardBuilder) flush() {
	text := strings.TrimRight(string(b.buf), " \n")
	if b.block.FontType == "" {
		text = strings.TrimLeft(text, " \n")
	} else {
		text = strings.TrimLeft(text, "\n")
	}
	if strings.TrimSpace(text) != "" {
		tb := b.block
		tb.Type, tb.Text, tb.Wrap = "TextBlock", text, true
		setColor(&tb, b.color)
		tb.Separator = b.sep
		b.sep = false
		b.out = append(b.out, tb)
	}
	b.buf, b.block, b.color, b.marks = b.buf[:0], textBlock{}, "", nil
}

func setColor(tb *textBlock, c string) {
	if c == "subtle" {
		tb.IsSubtle = true
		return
	}
	tb.Color = c
}

func (b *cardBuilder) endCell() {
	if b.cell == nil {
		return
	}
	for len(b.marks) > 0 {
		b.closeMark(map[string]string{"**": "b", "_": "i", "a": "a"}[b.marks[len(b.marks)-1].name])
	}
	tb := textBlock{Type: "TextBlock", Text: strings.TrimSpace(string(b.buf)), Wrap: true}
	if b.cellTH {
		tb.Weight = "Bolder"
	}
	setColor(&tb, b.color)
	b.cell.Items = []textBlock{tb}
	b.tbl.row = append(b.tbl.row, tb)
	b.cell = nil
	b.buf, b.color = b.buf[:0], ""
}

func (b *cardBuilder) endRow() {
	if b.tbl == nil {
		return
	}
	b.endCell()
	if b.tbl.inRow && len(b.tbl.row) > 0 {
		b.tbl.rows = append(b.tbl.rows, b.tbl.row)
		b.tbl.header = append(b.tbl.header, b.tbl.allTH)
	}
	b.tbl.row, b.tbl.inRow = nil, false
}

// finishTable adds the open table as a Table element.
func (b *cardBuilder) finishTable() {
	if b.tbl == nil {
		return
	}
	b.endRow()
	t := b.tbl
	b.tbl = nil
	b.buf = b.buf[:0]
	if len(t.rows) == 0 {
		return
	}
	cols := 0
	for _, r := range t.rows {
		cols = max(cols, len(r))
	}
	el := table{Type: "Table", FirstRowAsHeader: t.header[0], ShowGridLines: true, GridStyle: "accent", Separator: b.sep}
	b.sep = false
	for range cols {
		el.Columns = append(el.Columns, column{Width: 1})
	}
	for _, r := range t.rows {
		row := tableRow{Type: "TableRow"}
		for i := range cols {
			tb := textBlock{Type: "TextBlock", Wrap: true}
			if i < len(r) {
				tb = r[i]
			}
			row.Cells = append(row.Cells, tableCell{Type: "TableCell", Items: []textBlock{tb}})
		}
		el.Rows = append(el.Rows, row)
	}
	b.out = append(b.out, el)
}

package main

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
)

// htmlTags are the elements whose presence marks a description as HTML.
var htmlTags = map[string]bool{
	"a": true, "b": true, "big": true, "blockquote": true, "body": true, "br": true, "center": true,
	"code": true, "dd": true, "div": true, "dl": true, "dt": true, "em": true, "font": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "head": true, "hr": true,
	"html": true, "i": true, "img": true, "li": true, "ol": true, "p": true, "pre": true, "section": true,
	"small": true, "span": true, "strong": true, "style": true, "sub": true, "sup": true, "table": true,
	"tbody": true, "td": true, "th": true, "thead": true, "tr": true, "tt": true, "u": true, "ul": true,
}

// looksLikeHTML reports whether s holds at least one known HTML tag.
func looksLikeHTML(s string) bool {
	if !strings.Contains(s, "<") {
		return false
	}
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return false
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			if htmlTags[string(name)] {
				return true
			}
		}
	}
}

// blockGap is the number of line breaks around a block element: 2 leaves
// an empty line (a paragraph), 1 starts a new line.
var blockGap = map[string]int{
	"p": 2, "h1": 2, "h2": 2, "h3": 2, "h4": 2, "h5": 2, "h6": 2, "table": 2, "ul": 2, "ol": 2,
	"pre": 2, "blockquote": 2, "dl": 2, "section": 2, "article": 2, "header": 1, "footer": 1,
	"div": 1, "tr": 1, "li": 1, "dt": 1, "dd": 1, "center": 1, "form": 1, "thead": 1, "tbody": 1, "caption": 1,
}

// skipped elements contribute no text.
var skipped = map[string]bool{"head": true, "script": true, "style": true, "title": true, "template": true, "noscript": true}

// textWriter accumulates the plain text of an HTML document.
type textWriter struct {
	b        strings.Builder
	newlines int  // line breaks at the end of b
	last     byte // the last byte written
	space    bool // a space is due before the next word
	pre      int  // depth of <pre>
	skip     int  // depth of skipped elements
	lists    []int
	cells    []int
	links    []link
}

type link struct {
	href  string
	start int
}

// htmlToText renders HTML as readable plain text: tags are dropped, blocks
// and <br> become line breaks, list items get "- " (or "1. "), table cells
// are separated by " | ", and a link whose text is not its address is
// followed by the address in parentheses.
func htmlToText(s string) string {
	w := &textWriter{newlines: 2}
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		tok := z.Token()
		switch tt {
		case html.TextToken:
			w.text(tok.Data)
		case html.StartTagToken, html.SelfClosingTagToken:
			w.start(tok, tt == html.SelfClosingTagToken)
		case html.EndTagToken:
			w.end(tok.Data)
		}
	}
	lines := strings.Split(w.b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n") + "\n"
}

func (w *textWriter) write(s string) {
	if s == "" {
		return
	}
	w.b.WriteString(s)
	w.last = s[len(s)-1]
	trimmed := strings.TrimRight(s, "\n")
	if n := len(s) - len(trimmed); trimmed == "" {
		w.newlines += n
	} else {
		w.newlines = n
	}
}

// text writes character data, collapsing white space outside <pre>.
func (w *textWriter) text(s string) {
	if w.skip > 0 {
		return
	}
	if w.pre > 0 {
		w.write(s)
		w.space = false
		return
	}
	for i, word := range strings.Fields(s) {
		if (i > 0 || w.space || startsWithSpace(s)) && w.newlines == 0 && w.last != ' ' {
			w.write(" ")
		}
		w.write(word)
		w.space = false
	}
	if strings.TrimSpace(s) == "" || endsWithSpace(s) {
		w.space = true
	}
}

func startsWithSpace(s string) bool { return s != "" && strings.ContainsRune(" \t\r\n\f", rune(s[0])) }
func endsWithSpace(s string) bool {
	return s != "" && strings.ContainsRune(" \t\r\n\f", rune(s[len(s)-1]))
}

// block ensures at least n line breaks before what follows.
func (w *textWriter) block(n int) {
	if w.skip > 0 {
		return
	}
	for w.newlines < n {
		w.write("\n")
	}
	w.space = false
}

func (w *textWriter) start(tok html.Token, selfClosing bool) {
	name := tok.Data
	if skipped[name] {
		if !selfClosing {
			w.skip++
		}
		return
	}
	if w.skip > 0 {
		return
	}
	if n, ok := blockGap[name]; ok {
		if (name == "ul" || name == "ol") && len(w.lists) > 0 {
			n = 1 // a list in a list item
		}
		w.block(n)
	}
	switch name {
	case "br":
		w.write("\n")
		w.space = false
	case "hr":
		w.block(1)
		w.write(strings.Repeat("-", 40) + "\n")
	case "pre":
		w.pre++
	case "ul":
		w.lists = append(w.lists, 0)
	case "ol":
		w.lists = append(w.lists, 1)
	case "li":
		indent := ""
		if len(w.lists) > 1 {
			indent = strings.Repeat("  ", len(w.lists)-1)
		}
		if n := len(w.lists); n > 0 && w.lists[n-1] > 0 {
			w.write(indent + strconv.Itoa(w.lists[n-1]) + ". ")
			w.lists[n-1]++
		} else {
			w.write(indent + "- ")
		}
	case "tr":
		w.cells = append(w.cells, 0)
	case "td", "th":
		if n := len(w.cells); n > 0 {
			if w.cells[n-1] > 0 {
				w.write(" | ")
			}
			w.cells[n-1]++
		}
		w.space = false
	case "a":
		w.links = append(w.links, link{href: attr(tok, "href"), start: w.b.Len()})
	case "img":
		if alt := strings.TrimSpace(attr(tok, "alt")); alt != "" {
			w.text(" [" + alt + "] ")
		}
	}
}

func (w *textWriter) end(name string) {
	if skipped[name] {
		if w.skip > 0 {
			w.skip--
		}
		return
	}
	if w.skip > 0 {
		return
	}
	switch name {
	case "pre":
		if w.pre > 0 {
			w.pre--
		}
	case "ul", "ol":
		if n := len(w.lists); n > 0 {
			w.lists = w.lists[:n-1]
		}
		if len(w.lists) > 0 {
			w.block(1)
			return
		}
	case "tr":
		if n := len(w.cells); n > 0 {
			w.cells = w.cells[:n-1]
		}
	case "a":
		n := len(w.links)
		if n == 0 {
			break
		}
		l := w.links[n-1]
		w.links = w.links[:n-1]
		target := linkTarget(l.href)
		if target == "" {
			break
		}
		shown := ""
		if l.start <= w.b.Len() {
			shown = strings.TrimSpace(w.b.String()[l.start:])
		}
		if shown != target && shown != l.href {
			if shown == "" {
				w.text(target)
			} else {
				w.write(" (" + target + ")")
			}
		}
	}
	if n, ok := blockGap[name]; ok {
		w.block(n)
	}
}

// linkTarget returns what a reader needs of an href: the address of an
// http(s) or mailto link, "" for anchors and scripts.
func linkTarget(href string) string {
	href = strings.TrimSpace(href)
	lower := strings.ToLower(href)
	switch {
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		return href
	case strings.HasPrefix(lower, "mailto:"):
		return href[len("mailto:"):]
	}
	return ""
}

func attr(tok html.Token, key string) string {
	for _, a := range tok.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

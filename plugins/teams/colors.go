package main

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
)

func attr(tok html.Token, key string) string {
	for _, a := range tok.Attr {
		if strings.EqualFold(a.Key, key) {
			return a.Val
		}
	}
	return ""
}

// colorOf returns the CSS color of a <span style="color: ..."> or a
// <font color="...">.
func colorOf(tok html.Token) string {
	if c := attr(tok, "color"); c != "" {
		return c
	}
	for _, decl := range strings.Split(attr(tok, "style"), ";") {
		k, v, ok := strings.Cut(decl, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "color") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// adaptiveColor maps a CSS color (#rgb, #rrggbb or a few names) to the
// nearest Adaptive Card text color: reds Attention, oranges and yellows
// Warning, greens Good, blues Accent, grays subtle.
func adaptiveColor(css string) string {
	css = strings.ToLower(strings.TrimSpace(css))
	switch css {
	case "red", "darkred", "crimson":
		return "Attention"
	case "orange", "yellow", "gold", "darkorange":
		return "Warning"
	case "green", "darkgreen", "olive":
		return "Good"
	case "blue", "navy":
		return "Accent"
	case "gray", "grey":
		return "subtle"
	}
	hex, ok := strings.CutPrefix(css, "#")
	if !ok {
		return ""
	}
	if len(hex) == 3 {
		hex = string([]byte{hex[0], hex[0], hex[1], hex[1], hex[2], hex[2]})
	}
	if len(hex) != 6 {
		return ""
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		return ""
	}
	r, g, bl := float64(v>>16&0xff), float64(v>>8&0xff), float64(v&0xff)
	hi, lo := max(r, g, bl), min(r, g, bl)
	if hi-lo < 40 {
		return "subtle"
	}
	var h float64
	switch hi {
	case r:
		h = 60 * (g - bl) / (hi - lo)
	case g:
		h = 60*(bl-r)/(hi-lo) + 120
	default:
		h = 60*(r-g)/(hi-lo) + 240
	}
	if h < 0 {
		h += 360
	}
	switch {
	case h < 20 || h >= 330:
		return "Attention"
	case h < 70:
		return "Warning"
	case h < 170:
		return "Good"
	case h < 260:
		return "Accent"
	}
	return ""
}

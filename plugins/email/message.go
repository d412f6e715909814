package main

import (
	"crypto/sha256"
	"encoding/hex"
	"html"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"unicode"

	gomail "github.com/wneessen/go-mail"

	"github.com/postee-dev/postee/sdk"
)

// maxSubject bounds the subject (in runes); longer titles are cut.
const maxSubject = 250

// message is the mail of one execution, built once and written for every
// SMTP transaction (each copy gets its own To header).
type message struct {
	id      string // Message-ID without angle brackets
	from    *mail.Address
	subject string
	text    string
	html    string
}

// newMessage builds the mail for ex. The Message-ID is derived from the
// execution id, so that every attempt of one execution sends the same
// Message-ID and a duplicate is recognisable.
func newMessage(ex *sdk.Execution, from *mail.Address, helo string) *message {
	sum := sha256.Sum256([]byte("postee-email\x00" + ex.ID))
	domain := helo
	if domain == "" || strings.HasPrefix(domain, "[") {
		if i := strings.LastIndexByte(from.Address, '@'); i >= 0 {
			domain = from.Address[i+1:]
		}
	}
	if domain == "" {
		domain = "postee.invalid"
	}
	m := &message{
		id:      hex.EncodeToString(sum[:16]) + "@" + domain,
		from:    from,
		subject: subject(ex.Message.Title),
	}
	m.html, m.text = bodies(ex.Message.Description, ex.Message.URL, m.subject)
	return m
}

// subject makes a header-safe subject of a title: control characters and
// line breaks become spaces, runs of spaces one, and it is bounded.
func subject(title string) string {
	s := strings.Join(strings.FieldsFunc(title, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	if r := []rune(s); len(r) > maxSubject {
		s = string(r[:maxSubject-1]) + "…"
	}
	if s == "" {
		s = "postee notification"
	}
	return s
}

// bodies returns the HTML and plain-text parts for a description. An HTML
// description is sent as is (wrapped in a document when it is a fragment)
// with a text derived from it; a plain-text description is sent as the text
// part and, preformatted, as the HTML part. A message URL not already in the
// description is added as a link.
func bodies(desc, link, title string) (htmlBody, textBody string) {
	link = strings.TrimSpace(link)
	if u, err := url.Parse(link); err != nil || (u.Scheme != "http" && u.Scheme != "https") || strings.Contains(desc, link) {
		link = ""
	}
	if looksLikeHTML(desc) {
		htmlBody = desc
		if link != "" {
			htmlBody += "\n<p><a href=\"" + html.EscapeString(link) + "\">" + html.EscapeString(link) + "</a></p>\n"
		}
		if !isDocument(htmlBody) {
			htmlBody = wrapDocument(title, htmlBody)
		}
		return htmlBody, htmlToText(htmlBody)
	}
	textBody = strings.TrimRight(desc, " \t\r\n")
	if link != "" {
		textBody += "\n\n" + link
	}
	inner := "<pre style=\"white-space: pre-wrap; font-family: inherit\">" + html.EscapeString(strings.TrimRight(desc, " \t\r\n")) + "</pre>\n"
	if link != "" {
		inner += "<p><a href=\"" + html.EscapeString(link) + "\">" + html.EscapeString(link) + "</a></p>\n"
	}
	return wrapDocument(title, inner), textBody + "\n"
}

func isDocument(s string) bool {
	t := strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(t, "<!doctype") || strings.HasPrefix(t, "<html")
}

func wrapDocument(title, body string) string {
	return "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>" + html.EscapeString(title) +
		"</title>\n</head>\n<body>\n" + body + "\n</body>\n</html>\n"
}

// mail returns the go-mail message addressed to to.
func (m *message) mail(to []*mail.Address) *gomail.Msg {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(m.from)
	msg.ToMailAddress(to...)
	msg.Subject(m.subject)
	msg.SetDate()
	msg.SetMessageIDWithValue(m.id)
	msg.SetGenHeader(gomail.HeaderXMailer, "postee")
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.html)
	return msg
}

// localName is the EHLO name: client-host-name, or this machine's name.
func localName(helo string) string {
	if helo != "" {
		return helo
	}
	if h, err := os.Hostname(); err == nil && validHostName(h) {
		return h
	}
	return "localhost"
}

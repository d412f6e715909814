// Command postee-action-teams is the postee action plugin of type "teams":
// it posts the rendered message of every event to a Microsoft Teams
// webhook.
//
// Two kinds of webhook are served: the Office 365 connector ("Incoming
// Webhook", answering 200 with the body "1") gets a MessageCard whose text
// is the template's HTML; a Workflows (Power Automate / Logic Apps) webhook
// (answering 202 with an empty body) gets a message with one Adaptive Card,
// the HTML converted to TextBlocks and Tables. The kind follows the URL's
// host unless `format` forces it. A message over `size-limit` is split into
// several messages, sent in order. See README.md.
package main

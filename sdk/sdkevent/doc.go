// Package sdkevent fills `event.input.<path>` placeholders from the raw JSON
// event, the way postee's built-in actions do in settings such as http's
// body-content, docker's docker-cmd and kubernetes' label values.
//
// A setting is parsed once, in Configure, with Parse; Execute fills it with
// Render (on an event decoded once with Decode) or Execute (on the raw
// event). A value without placeholders is returned as written and never
// needs the event.
package sdkevent

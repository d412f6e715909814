package cluster

import (
	"fmt"

	"github.com/postee-dev/postee/core/event"
)

// Stream and subject names.
const (
	WorkStream     = "POSTEE_WORK"
	UpstreamStream = "POSTEE_UP"
	// ControllerConsumer is the controller's durable consumer of POSTEE_UP.
	ControllerConsumer = "controller"

	// HeaderRunner lets a producer name the runner of its node.
	HeaderRunner = "X-Postee-Runner"
	// FieldRunner is the event field with the same meaning (the header wins).
	FieldRunner = "postee_runner"
)

// peerOutcomeSubject carries runners' outcomes between the controllers
// sharing a NATS cluster (only controllers may use it); controllersQueue is
// their queue group for runners' requests.
const (
	peerOutcomeSubject = "postee.peer.outcome"
	controllersQueue   = "postee-controllers"
)

func bootstrapSubject(runner string) string { return "postee.ctl." + runner + ".bootstrap" }
func configSubject(runner string) string    { return "postee.runner." + runner + ".config" }
func workSubject(runner string) string      { return "postee.work." + runner }
func eventSubject(runner string) string     { return "postee.up." + runner + ".event" }
func outcomeSubject(runner string) string   { return "postee.up." + runner + ".outcome" }
func localSubject(runner string) string     { return "postee.up." + runner + ".local" }
func outcomesSubject(runner string) string  { return "postee.up." + runner + ".outcomes" }
func inboxPrefix(runner string) string      { return "_INBOX_" + runner }

// ValidRunnerName reports whether name can be a runner's name: 1 to 64
// ASCII letters, digits, '-' and '_' (it becomes a NATS subject token and a
// consumer name). A loop, not a regular expression: `{1,64}` compiled at
// package initialisation cost every start of postee ~60 KB and 860
// allocations.
func ValidRunnerName(name string) error {
	if len(name) < 1 || len(name) > 64 || !event.PlainName(name) {
		return fmt.Errorf("invalid runner name %q: use 1 to 64 letters, digits, '-' or '_'", name)
	}
	return nil
}

// NamespacedEventID is the controller's id of an event that runner
// reported under id: runners choose their own ids, so each runner's are
// kept apart from the controller's and from every other runner's.
func NamespacedEventID(runner, id string) string { return runner + ":" + id }

// runnerFromSubject returns the runner token of postee.up.<runner>.<kind>
// or postee.ctl.<runner>.<kind>.
func runnerFromSubject(subject string) (runner, kind string, ok bool) {
	var parts [4]string
	n := 0
	start := 0
	for i := 0; i <= len(subject); i++ {
		if i == len(subject) || subject[i] == '.' {
			if n == 4 {
				return "", "", false
			}
			parts[n] = subject[start:i]
			n++
			start = i + 1
		}
	}
	if n != 4 || parts[0] != "postee" {
		return "", "", false
	}
	return parts[2], parts[3], true
}

package placement

import (
	"fmt"

	"github.com/postee-dev/postee/core/config"
)

// The producer's runner hint: a request header, or a field of the event.
// Runners honour both; a controller or standalone node only from producers
// with an ingest credential (core/webhook), and the event field only on
// events that came through a runner (FieldHintTrusted).
const (
	HintHeader = "X-Postee-Runner"
	HintField  = "postee_runner"
)

// Input is what the decision for one action and one event depends on.
type Input struct {
	// RunsOn is the action's runs-on: "", a runner name, or
	// config.RunsOnOrigin.
	RunsOn string
	// Remote is true when a controller keeps the action for a runner (its
	// runs-on is set); false for actions this node runs itself.
	Remote bool
	// Origin is the runner the event arrived at ("" when it arrived here).
	Origin string
	// Hint is the runner the producer named (already checked for trust).
	Hint string
	// Self is this node's runner name; "" on a controller or standalone
	// node.
	Self string
}

// Where an action runs.
type Where int

const (
	// Here: this node runs the action.
	Here Where = iota
	// Runner: the action is dispatched to Decision.Runner.
	Runner
	// Skip: the action does not run for this event here (the origin runner
	// ran it already, or it is another runner's node-local action).
	Skip
)

// Decision is where an action runs; Runner is set when Where is Runner.
type Decision struct {
	Where  Where
	Runner string
}

// Decide says where the action described by in runs, or why it cannot run
// anywhere (runs-on "@origin" on an event that names no runner).
func Decide(in Input) (Decision, error) {
	switch {
	case in.Self != "":
		// A runner runs its own actions; node-local ones only when the
		// event names no other runner.
		if in.RunsOn == config.RunsOnOrigin && in.Hint != "" && in.Hint != in.Self {
			return Decision{Where: Skip}, nil
		}
		return Decision{Where: Here}, nil
	case !in.Remote:
		return Decision{Where: Here}, nil
	}
	target := in.RunsOn
	if target == config.RunsOnOrigin {
		target = in.Hint
		if target == "" {
			target = in.Origin
		}
		if target == "" {
			return Decision{}, fmt.Errorf("runs-on %s, but the event names no runner (header %s or field %s)", config.RunsOnOrigin, HintHeader, HintField)
		}
	}
	if in.Origin != "" && target == in.Origin {
		return Decision{Where: Skip}, nil // the origin runner ran it already
	}
	return Decision{Where: Runner, Runner: target}, nil
}

// FieldHintTrusted says whether the event's own runner field may be read:
// on a runner, and on a controller for events that came through a runner.
// Events a producer sent straight to a controller or standalone node carry
// a hint only when the webhook accepted it from a credentialed producer.
func FieldHintTrusted(origin, self string) bool {
	return origin != "" || self != ""
}

package placement

import (
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	const origin = "@origin"
	tests := []struct {
		name    string
		in      Input
		want    Decision
		wantErr string
	}{
		// Standalone node, or a controller's own actions.
		{name: "local action here", in: Input{}, want: Decision{Where: Here}},
		{name: "local action ignores hint", in: Input{Hint: "r1", Origin: "r2"}, want: Decision{Where: Here}},
		{name: "not remote though runs-on set", in: Input{RunsOn: "r1"}, want: Decision{Where: Here}},
		// Controller, actions kept for runners.
		{name: "named runner", in: Input{RunsOn: "r1", Remote: true}, want: Decision{Where: Runner, Runner: "r1"}},
		{name: "named runner, event from another runner", in: Input{RunsOn: "r1", Remote: true, Origin: "r2"}, want: Decision{Where: Runner, Runner: "r1"}},
		{name: "named runner is the origin", in: Input{RunsOn: "r1", Remote: true, Origin: "r1"}, want: Decision{Where: Skip}},
		{name: "origin from hint", in: Input{RunsOn: origin, Remote: true, Hint: "r1"}, want: Decision{Where: Runner, Runner: "r1"}},
		{name: "origin from event's runner", in: Input{RunsOn: origin, Remote: true, Origin: "r2"}, want: Decision{Where: Skip}},
		{name: "hint wins over origin", in: Input{RunsOn: origin, Remote: true, Hint: "r1", Origin: "r2"}, want: Decision{Where: Runner, Runner: "r1"}},
		{name: "hint names the origin", in: Input{RunsOn: origin, Remote: true, Hint: "r2", Origin: "r2"}, want: Decision{Where: Skip}},
		{name: "origin without any runner", in: Input{RunsOn: origin, Remote: true}, wantErr: "runs-on @origin, but the event names no runner (header X-Postee-Runner or field postee_runner)"},
		// Runner.
		{name: "runner runs its own", in: Input{RunsOn: "r1", Self: "r1"}, want: Decision{Where: Here}},
		{name: "runner node-local, no hint", in: Input{RunsOn: origin, Self: "r1"}, want: Decision{Where: Here}},
		{name: "runner node-local, hint names self", in: Input{RunsOn: origin, Self: "r1", Hint: "r1"}, want: Decision{Where: Here}},
		{name: "runner node-local, hint names another", in: Input{RunsOn: origin, Self: "r1", Hint: "r2"}, want: Decision{Where: Skip}},
		{name: "runner named action, hint names another", in: Input{RunsOn: "r1", Self: "r1", Hint: "r2"}, want: Decision{Where: Here}},
		{name: "runner ignores remote", in: Input{RunsOn: origin, Remote: true, Self: "r1"}, want: Decision{Where: Here}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decide(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decide(%+v) error %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide(%+v): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Decide(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestFieldHintTrusted(t *testing.T) {
	tests := []struct {
		origin, self string
		want         bool
	}{
		{"", "", false},
		{"r1", "", true},
		{"", "r1", true},
		{"r1", "r1", true},
	}
	for _, tt := range tests {
		if got := FieldHintTrusted(tt.origin, tt.self); got != tt.want {
			t.Errorf("FieldHintTrusted(%q, %q) = %v, want %v", tt.origin, tt.self, got, tt.want)
		}
	}
}

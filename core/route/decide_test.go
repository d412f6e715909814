package route

import (
	"context"
	"reflect"
	"testing"
)

func TestDecideSaysWhichRegoDecided(t *testing.T) {
	ctx := context.Background()
	files := []Filter{
		{Name: "registry.rego", Source: "package a\nallow if input.registry == \"ghcr.io\"\n"},
		{Name: "critical.rego", Source: "package b\nallow if input.critical > 0\n"},
	}
	cases := []struct {
		name    string
		input   string
		filters []Filter
		event   string
		want    Decision
	}{
		{"everything", "", nil, `{}`, Decision{Matched: true}},
		{"input allows", `input.critical > 0`, nil, `{"critical": 2}`, Decision{Matched: true, By: "input", Evaluated: []string{"input"}}},
		{"input refuses", `input.critical > 0`, nil, `{"critical": 0}`, Decision{Evaluated: []string{"input"}}},
		{"second file decides", "", files, `{"registry": "docker.io", "critical": 1}`,
			Decision{Matched: true, By: `filter "critical.rego"`, Evaluated: []string{`filter "registry.rego"`, `filter "critical.rego"`}}},
		{"first file decides", "", files, `{"registry": "ghcr.io", "critical": 1}`,
			Decision{Matched: true, By: `filter "registry.rego"`, Evaluated: []string{`filter "registry.rego"`, `filter "critical.rego"`}}},
		{"no file allows", "", files, `{"registry": "docker.io", "critical": 0}`,
			Decision{Evaluated: []string{`filter "registry.rego"`, `filter "critical.rego"`}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Compile(ctx, "r", tc.input, tc.filters)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Decide(ctx, parse(t, []byte(tc.event)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decide = %+v, want %+v", got, tc.want)
			}
			if ok, _ := m.Match(ctx, parse(t, []byte(tc.event))); ok != tc.want.Matched {
				t.Errorf("Match = %v, Decide says %v", ok, tc.want.Matched)
			}
		})
	}
}

package route

import (
	"context"
	"testing"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/internal/testevents"
)

func BenchmarkRouteMatch(b *testing.B) {
	ctx := context.Background()
	v, err := event.Parse(testevents.Trivy(1, 20))
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct{ name, input string }{
		{"contains", `contains(input.image, "alpine")`},
		{"critical", `input.vulnerability_summary.critical > 0`},
		{"iterate", "some r in input.resources\nsome x in r.vulnerabilities\nx.fix_version != \"\""},
	}
	for _, c := range cases {
		m, err := Compile(ctx, "bench", c.input, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ok, err := m.Match(ctx, v)
				if err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
	}
	b.Run("contains/cancellable-ctx", func(b *testing.B) {
		m, _ := Compile(ctx, "bench", cases[0].input, nil)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := m.Match(cctx, v); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
}

package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/internal/testevents"
)

// The rich templates goal: each bundled template that lists every
// vulnerability of a scan report renders a 1000-vulnerability Trivy report
// and Aqua scan in under goalTemplateMS, as postee renders them (its
// template package, a compiled template, the event parsed once), here in
// loadgen's own process once the load runs are over.
const (
	goalTemplateMS  = 30
	templateVulns   = 1000
	templateWarmups = 2
)

// templateTime is the render times of one template on one report.
type templateTime struct {
	Template string    `json:"template"`
	Report   string    `json:"report"`
	MS       []float64 `json:"ms"`
	Median   float64   `json:"median_ms"`
}

// measureTemplates renders each rich template on each report runs times
// (after templateWarmups renders) and records the times.
func (s *suite) measureTemplates(ctx context.Context, runs int, stdout io.Writer) error {
	compiled := make([]*template.Renderer, len(testevents.ReportTemplates))
	for i, pkg := range testevents.ReportTemplates {
		r, err := template.Compile(ctx, template.Spec{Name: "bench", RegoPackage: pkg})
		if err != nil {
			return fmt.Errorf("%s: %w", pkg, err)
		}
		compiled[i] = r
	}
	for _, ev := range testevents.Reports {
		v, err := event.Parse(ev.Event(templateVulns))
		if err != nil {
			return fmt.Errorf("%s report: %w", ev.Name, err)
		}
		in := template.Input(v, "https://aqua.example.com")
		for i, r := range compiled {
			pkg := testevents.ReportTemplates[i]
			runtime.GC() // what the load runs left is not this render's garbage
			tt := templateTime{Template: pkg, Report: ev.Name}
			for n := range templateWarmups + runs {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				t0 := time.Now()
				if _, err := r.Render(ctx, in); err != nil {
					return fmt.Errorf("%s on the %s report: %w", pkg, ev.Name, err)
				}
				if n >= templateWarmups {
					tt.MS = append(tt.MS, float64(time.Since(t0).Microseconds())/1000)
				}
			}
			tt.Median = median(tt.MS)
			s.Templates = append(s.Templates, tt)
			fmt.Fprintf(stdout, "  %-26s %-6s median %5.1f ms  (%s)\n", strings.TrimPrefix(pkg, "postee."), ev.Name, tt.Median, formatMS(tt.MS))
		}
	}
	return nil
}

// slowestTemplate is the template and report of the highest median.
func (s *suite) slowestTemplate() (templateTime, bool) {
	var worst templateTime
	for _, t := range s.Templates {
		if t.Median > worst.Median {
			worst = t
		}
	}
	return worst, len(s.Templates) == len(testevents.ReportTemplates)*len(testevents.Reports)
}

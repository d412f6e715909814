package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestLogFormatsOneEventPerLineSameKeys(t *testing.T) {
	multi := errors.New("cfg.yaml:3: route \"a\": bad\ncfg.yaml:9: action \"b\": worse")
	emit := func(l hclog.Logger) {
		l.Info("configuration loaded", "file", "cfg.yaml", "routes", 2)
		l.Named("plugins").Error("reload refused\nsecond line", "error", multi)
		l.With("route", "r1").Warn("slow", "took", "3s")
	}
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			lo := logOptions{format: format}
			if err := lo.resolve(); err != nil {
				t.Fatal(err)
			}
			emit(lo.newLog(false, &buf))
			lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
			if len(lines) != 3 {
				t.Fatalf("%d lines for 3 events:\n%s", len(lines), buf.String())
			}
			for i, keys := range [][]string{{"file", "routes"}, {"error"}, {"route", "took"}} {
				for _, k := range keys {
					want := k + "="
					if format == "json" {
						want = `"` + k + `":`
					}
					if !strings.Contains(lines[i], want) {
						t.Errorf("line %d lacks key %s: %s", i+1, k, lines[i])
					}
				}
				if format == "json" {
					var m map[string]any
					if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
						t.Errorf("line %d is not JSON: %v", i+1, err)
					}
					for _, k := range []string{"@timestamp", "@level", "@message", "@module"} {
						if _, ok := m[k]; !ok {
							t.Errorf("line %d lacks %s", i+1, k)
						}
					}
				}
			}
			if !strings.Contains(lines[1], `cfg.yaml:9`) {
				t.Errorf("the second line of the error is lost: %s", lines[1])
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	cases := []struct {
		level string
		debug bool
		env   string
		want  hclog.Level
		err   bool
	}{
		{want: hclog.Info},
		{debug: true, want: hclog.Debug},
		{level: "warn", want: hclog.Warn},
		{level: "error", debug: true, want: hclog.Error},
		{env: "trace", want: hclog.Trace},
		{level: "loud", err: true},
	}
	for _, tc := range cases {
		t.Setenv("POSTEE_LOG_LEVEL", tc.env)
		lo := logOptions{format: "text", level: tc.level}
		err := lo.resolve()
		if (err != nil) != tc.err {
			t.Fatalf("%+v: error %v", tc, err)
		}
		if err != nil {
			continue
		}
		if got := lo.loggerOptions(tc.debug, nil).Level; got != tc.want {
			t.Errorf("level %q debug %v env %q: %s, want %s", tc.level, tc.debug, tc.env, got, tc.want)
		}
	}
	lo := logOptions{format: "xml"}
	if err := lo.resolve(); err == nil {
		t.Error("--log-format xml accepted")
	}
}

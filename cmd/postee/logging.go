package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"
)

// logOptions are --log-format and --log-level (env POSTEE_LOG_FORMAT,
// POSTEE_LOG_LEVEL). --debug (POSTEE_DEBUG) means --log-level debug when no
// level is given.
type logOptions struct {
	format, level string
}

func (l *logOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&l.format, "log-format", "text", "log format: text or json (hclog's JSON: one object a line with @timestamp, @level, @module, @message and the same keys as text) (env POSTEE_LOG_FORMAT)")
	f.StringVar(&l.level, "log-level", "", "log level: trace, debug, info, warn or error (default info; --debug means debug) (env POSTEE_LOG_LEVEL)")
}

// resolve applies the environment and checks the values.
func (l *logOptions) resolve() error {
	if v, ok := env("POSTEE_LOG_FORMAT"); ok && v != "" {
		l.format = v
	}
	if v, ok := env("POSTEE_LOG_LEVEL"); ok && v != "" {
		l.level = v
	}
	switch strings.ToLower(l.format) {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format must be text or json, not %q", l.format)
	}
	if l.level != "" && hclog.LevelFromString(l.level) == hclog.NoLevel {
		return fmt.Errorf("--log-level must be trace, debug, info, warn or error, not %q", l.level)
	}
	return nil
}

// loggerOptions are the hclog options of postee's logger.
func (l *logOptions) loggerOptions(debug bool, out io.Writer) *hclog.LoggerOptions {
	level := hclog.Info
	switch {
	case l.level != "":
		level = hclog.LevelFromString(l.level)
	case debug:
		level = hclog.Debug
	}
	return &hclog.LoggerOptions{Name: "postee", Level: level, Output: out, TimeFormat: time.RFC3339Nano,
		JSONFormat: strings.EqualFold(l.format, "json")}
}

// newLog returns postee's logger: one event a line in both formats (in
// text, a value or message with line breaks is quoted instead of hclog's
// indented continuation lines).
func (l *logOptions) newLog(debug bool, out io.Writer) hclog.Logger {
	opts := l.loggerOptions(debug, out)
	if opts.JSONFormat {
		return hclog.New(opts)
	}
	opts.SubloggerHook = func(sub hclog.Logger) hclog.Logger { return oneLine{sub} }
	return oneLine{hclog.New(opts)}
}

// oneLine keeps every text log event on one line.
type oneLine struct{ hclog.Logger }

func flat(msg string, args []any) (string, []any) {
	if strings.ContainsAny(msg, "\r\n") {
		msg = strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(msg)
	}
	var out []any
	for i := 1; i < len(args); i += 2 {
		var s string
		switch v := args[i].(type) {
		case string:
			s = v
		case error:
			s = v.Error()
		case fmt.Stringer:
			s = v.String()
		default:
			continue
		}
		if strings.ContainsAny(s, "\r\n") {
			if out == nil {
				out = append([]any(nil), args...)
			}
			out[i] = hclog.Quote(s)
		}
	}
	if out == nil {
		out = args
	}
	return msg, out
}

func (l oneLine) Log(level hclog.Level, msg string, args ...any) {
	msg, args = flat(msg, args)
	l.Logger.Log(level, msg, args...)
}
func (l oneLine) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l oneLine) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l oneLine) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l oneLine) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l oneLine) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

var _ hclog.Logger = oneLine{}

// envTrue reports whether the variable is set to a true value (1, true,
// yes, on).
func envTrue(name string) bool {
	v, _ := env(name)
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

package secrets

import (
	"fmt"
	"os"
	"strings"

	"github.com/postee-dev/postee/core/config"
)

// Key reports whether an action setting may hold a secret and so
// may name environment variables instead ("$VARNAME", "${VARNAME}"): url,
// host, user, username, password, token, instance, headers and any key
// ending in -key, -token, -password or -secret (dependency-track-api-key,
// pagerduty-routing-key, pagerduty-auth-token). Other settings (scripts,
// bodies) are passed as written, since a `$` in them means something else.
func Key(k string) bool {
	switch k {
	case "url", "host", "user", "username", "password", "token", "instance", "headers":
		return true
	}
	for _, suffix := range []string{"-key", "-token", "-password", "-secret"} {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

// Settings returns the settings a's plugin gets: its own keys (postee's
// are removed), with environment variables in secret-bearing keys read
// from this node's environment. It runs where the action runs, so a
// runner's secrets can stay in the runner's environment; the config keeps
// "$NAME" and only what the plugin gets changes.
func Settings(a *config.Action) (map[string]any, error) {
	out := a.PluginSettings()
	for k, v := range out {
		if !Key(k) {
			continue
		}
		ev, err := expandValue(v)
		if err != nil {
			return nil, fmt.Errorf("%s: action %q: %s: %w", a.PosOf(k), a.Name, k, err)
		}
		out[k] = ev
	}
	return out, nil
}

// expandValue expands the strings in v (a string, or the strings of a
// list or mapping such as headers).
func expandValue(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return Expand(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			ev, err := expandValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = ev
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ev, err := expandValue(e)
			if err != nil {
				return nil, err
			}
			out[k] = ev
		}
		return out, nil
	}
	return v, nil
}

// Expand expands a secret-bearing setting: a whole value "$NAME" (as
// the existing Postee reads user, password and token) and every "${NAME}"
// inside a longer value (a webhook URL with its token in the environment).
// A variable that is not set is an error: sending an empty token would
// fail later with a less clear message. Other "$" are kept as written.
func Expand(s string) (string, error) {
	if name, ok := strings.CutPrefix(s, "$"); ok && isEnvName(name) {
		return lookupEnv(name)
	}
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 || !isEnvName(rest[i+2:i+j]) {
			b.WriteString(rest[:i+2])
			rest = rest[i+2:]
			continue
		}
		val, err := lookupEnv(rest[i+2 : i+j])
		if err != nil {
			return "", err
		}
		b.WriteString(rest[:i])
		b.WriteString(val)
		rest = rest[i+j+1:]
	}
}

func lookupEnv(name string) (string, error) {
	val, set := os.LookupEnv(name)
	if !set {
		return "", fmt.Errorf("environment variable %s is not set", name)
	}
	return val, nil
}

// isEnvName reports whether s is an environment variable name
// ([A-Za-z_][A-Za-z0-9_]*).
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// Refs lists the environment variables a's settings refer to as $NAME
// or ${NAME}, in any setting: its plugin process is given them (an exec
// script's variables, a secret expanded here that the plugin reads again).
func Refs(a *config.Action) []string {
	seen := map[string]bool{}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			for _, n := range names(x) {
				if !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(a.PluginSettings())
	return out
}

// names returns the environment variable names s refers to as $NAME or
// ${NAME} (also ${NAME:-default} and the other shell forms), in order of
// first appearance. Shell specials ($1, $?, $$) are not names.
func names(s string) []string {
	var out []string
	seen := map[string]bool{}
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			continue
		}
		j := i + 1
		if s[j] == '{' {
			j++
		}
		k := j
		for k < len(s) && isNameByte(s[k], k == j) {
			k++
		}
		if k > j {
			name := s[j:k]
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
		i = k - 1
	}
	return out
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || !first && '0' <= c && c <= '9'
}

package config

import (
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/postee-dev/postee/internal/suggest"
)

// olderKey is a key of an older Postee version that the existing tool
// ignored by the time of the current format.
type olderKey struct {
	// current is the key that does the job now ("" when nothing does).
	current string
	// note says what became of it when there is no current key.
	note string
}

// olderKeys are the keys of older Postee versions still found in configs,
// by the struct they appear in.
var olderKeys = map[reflect.Type]map[string]olderKey{
	reflect.TypeOf(Config{}): {
		"AquaServer": {current: "aqua-server"},
		"outputs":    {current: "actions"},
	},
	reflect.TypeOf(Route{}): {
		"action":  {current: "actions"},
		"output":  {current: "actions"},
		"outputs": {current: "actions"},
	},
	reflect.TypeOf(RoutePlugins{}): {
		"aggregate-issues-number":  {current: "aggregate-message-number"},
		"aggregate-issues-timeout": {current: "aggregate-message-timeout"},
		"policy-show-all": {note: "it has no replacement: every event a route matches is sent, " +
			"unless unique-message-props drops repeats"},
	},
}

// unknownKey warns about a key postee does not read: the existing tool
// ignored it, and so does postee, saying so (validate --strict refuses it).
func (d *decoder) unknownKey(k *yaml.Node, t reflect.Type, what string, fields map[string]int) {
	key := k.Value
	if old, ok := olderKeys[t][key]; ok {
		if old.current != "" {
			d.warnf(k, what, "key %q is from an older Postee version and is ignored; the current key is %q", key, old.current)
		} else {
			d.warnf(k, what, "key %q is from an older Postee version and is ignored: %s", key, old.note)
		}
		return
	}
	known := sortedKeys(fields)
	if close := closeKey(key, known); close != "" {
		d.warnf(k, what, "unknown key %q is ignored; did you mean %q? (known: %s)", key, close, strings.Join(known, ", "))
		return
	}
	d.warnf(k, what, "unknown key %q is ignored (known: %s)", key, strings.Join(known, ", "))
}

// closeKey is the known key a user probably meant by key, or "".
func closeKey(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := suggest.Distance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

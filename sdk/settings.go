package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// hostKeys are keys of an action entry that belong to postee itself, not to
// the action; Settings.Decode skips them.
var hostKeys = map[string]bool{
	"name":    true,
	"type":    true,
	"enable":  true,
	"runs-on": true,
	"retry":   true,
}

// IsHostKey reports whether key is one postee reads itself from every action
// entry (name, type, enable, runs-on, retry).
func IsHostKey(key string) bool { return hostKeys[key] }

// Settings holds the keys of one action's YAML entry.
type Settings struct {
	raw map[string]any
}

// NewSettings returns Settings over m (used by tests and the harness).
func NewSettings(m map[string]any) Settings { return Settings{raw: m} }

// ParseSettings decodes a JSON object into Settings.
func ParseSettings(data []byte) (Settings, error) {
	var m map[string]any
	if len(bytes.TrimSpace(data)) == 0 {
		return Settings{raw: map[string]any{}}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return Settings{}, fmt.Errorf("settings are not a JSON object: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return Settings{raw: m}, nil
}

// Raw returns every key, host keys included. Do not modify it.
func (s Settings) Raw() map[string]any { return s.raw }

// JSON returns the settings as a JSON object.
func (s Settings) JSON() ([]byte, error) {
	if s.raw == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(s.raw)
}

// Decode decodes the action's own keys (host keys are skipped) into v, a
// pointer to a struct whose fields carry `json:"yaml-key"` tags. It is strict:
// a key v has no field for, or a value of the wrong type, is a *SettingsError
// naming the key.
func (s Settings) Decode(v any) error {
	own := make(map[string]any, len(s.raw))
	for k, val := range s.raw {
		if !hostKeys[k] {
			own[k] = val
		}
	}
	// encoding/json matches keys case-insensitively; settings keys are
	// matched exactly, so `URL:` is not taken for `url`.
	keyErr := exactKeys(own, v)
	if keyErr != nil {
		// Report the unknown keys and the problems of the known ones at once.
		known := make(map[string]any, len(own))
		names := map[string]bool{}
		for _, n := range jsonFieldNames(v) {
			names[n] = true
		}
		for k, val := range own {
			if names[k] {
				known[k] = val
			}
		}
		return errors.Join(append([]error{keyErr}, keyErrors(known, v)...)...)
	}
	data, err := json.Marshal(own)
	if err != nil {
		return &SettingsError{Message: err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// Report every key that fails, not only the first one.
		if errs := keyErrors(own, v); len(errs) > 0 {
			return errors.Join(errs...)
		}
		serr := settingsErrorFrom(err, v)
		if se, ok := serr.(*SettingsError); ok && se.Key == "" {
			se.Key = keyOf(own, v)
		}
		return serr
	}
	return nil
}

// keyErrors decodes the keys of own one at a time into fresh values of v's
// type and returns one *SettingsError per key that fails (only on the error
// path, so the cost does not matter).
func keyErrors(own map[string]any, v any) []error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil
	}
	keys := make([]string, 0, len(own))
	for k := range own {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		data, err := json.Marshal(map[string]any{k: own[k]})
		if err != nil {
			errs = append(errs, &SettingsError{Key: k, Message: err.Error()})
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(reflect.New(t.Elem()).Interface()); err != nil {
			serr := settingsErrorFrom(err, v)
			if se, ok := serr.(*SettingsError); ok {
				// The key as written, not encoding/json's path through
				// embedded structs ("Common.tls-verify").
				se.Key = k
			}
			errs = append(errs, serr)
		}
	}
	return errs
}

func settingsErrorFrom(err error, v any) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &SettingsError{Key: te.Field, Message: fmt.Sprintf("must be %s, not a %s", kindName(te.Type.Kind().String()), te.Value)}
	}
	var se *SettingsError
	if errors.As(err, &se) {
		return se
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		key, _ := strconv.Unquote(rest)
		known := knownKeys(v)
		return &SettingsError{Key: key, Message: fmt.Sprintf("unknown key %q (known: %s)", key, strings.Join(known, ", "))}
	}
	// Errors from a field's own UnmarshalJSON (Duration, ...) carry no key.
	return &SettingsError{Message: strings.TrimPrefix(msg, "json: ")}
}

// keyOf finds which key of own makes decoding into v's type fail, by
// decoding the keys one at a time (only on the error path).
func keyOf(own map[string]any, v any) string {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return ""
	}
	keys := make([]string, 0, len(own))
	for k := range own {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		data, err := json.Marshal(map[string]any{k: own[k]})
		if err != nil {
			return k
		}
		if json.Unmarshal(data, reflect.New(t.Elem()).Interface()) != nil {
			return k
		}
	}
	return ""
}

func kindName(k string) string {
	switch k {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "map", "struct":
		return "a mapping"
	case "string":
		return "a string"
	}
	return "a " + k
}

// SettingsError is a problem with one settings key (Key empty: the action as
// a whole). Return it from Configure to have the host point at the key's line.
type SettingsError struct {
	Key     string
	Message string
}

func (e *SettingsError) Error() string {
	if e.Key == "" {
		return e.Message
	}
	return fmt.Sprintf("%s: %s", e.Key, e.Message)
}

// SettingsErrorf returns a *SettingsError for key.
func SettingsErrorf(key, format string, args ...any) error {
	return &SettingsError{Key: key, Message: fmt.Sprintf(format, args...)}
}

// ParseDuration parses "10s", "1m30s", "2d" (days) or a bare number of seconds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(days, 64); err == nil {
			return time.Duration(n * 24 * float64(time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use 10s, 5m, 1h, 1d or a number of seconds)", s)
	}
	return d, nil
}

// UnmarshalJSON accepts a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	var (
		dur time.Duration
		err error
	)
	switch x := v.(type) {
	case string:
		dur, err = ParseDuration(x)
	case float64:
		dur = time.Duration(x * float64(time.Second))
	default:
		err = fmt.Errorf("invalid duration %s", b)
	}
	if err != nil {
		return err
	}
	if dur < 0 {
		return fmt.Errorf("negative duration %s", b)
	}
	*d = Duration(dur)
	return nil
}

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// PositiveDuration is a Duration that must be greater than zero, as a
// timeout must: it decodes like Duration and refuses zero.
type PositiveDuration Duration

// D returns d as a time.Duration.
func (d PositiveDuration) D() time.Duration { return time.Duration(d) }

// UnmarshalJSON accepts what Duration does, except zero.
func (d *PositiveDuration) UnmarshalJSON(b []byte) error {
	var v Duration
	if err := v.UnmarshalJSON(b); err != nil {
		return err
	}
	if v <= 0 {
		return errors.New("must be greater than zero")
	}
	*d = PositiveDuration(v)
	return nil
}

// MarshalJSON writes the duration as a Go duration string.
func (d PositiveDuration) MarshalJSON() ([]byte, error) { return Duration(d).MarshalJSON() }

func knownKeys(v any) []string {
	keys := jsonFieldNames(v)
	sort.Strings(keys)
	return keys
}

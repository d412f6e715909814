package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/postee-dev/postee/sdk/sdkhttp"
)

// settings are the keys of a jira action's entry.
type settings struct {
	sdkhttp.Common
	URL             string     `json:"url"`
	User            string     `json:"user"`
	Password        string     `json:"password"`
	Token           string     `json:"token"`
	ProjectKey      string     `json:"project-key"`
	IssueType       scalar     `json:"issuetype"`
	Priority        scalar     `json:"priority"`
	Assignee        stringList `json:"assignee"`
	Labels          stringList `json:"labels"`
	FixVersions     stringList `json:"fix-versions"`
	AffectsVersions stringList `json:"affects-versions"`
	Sprint          scalar     `json:"sprint"`
	Board           scalar     `json:"board"`
	Unknowns        unknowns   `json:"unknowns"`
	// Dedup labels each issue with a label derived from the execution id
	// and, on a retry, looks for an issue with that label before creating
	// one. Default true.
	Dedup *bool `json:"dedup"`
}

// scalar is a string setting that also accepts a YAML number (sprint: 37).
type scalar string

func (s *scalar) UnmarshalJSON(b []byte) error {
	v, ok, err := scalarValue(b)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("must be a string")
	}
	*s = scalar(v)
	return nil
}

// stringList is a list of strings; a single string is a list of one.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	if v, ok, err := scalarValue(b); err != nil {
		return err
	} else if ok {
		if strings.TrimSpace(v) == "" {
			*l = nil
		} else {
			*l = stringList{v}
		}
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("must be a string or a list of strings")
	}
	out := make(stringList, 0, len(raw))
	for _, r := range raw {
		v, ok, err := scalarValue(r)
		if err != nil || !ok {
			return fmt.Errorf("must be a string or a list of strings")
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

// unknownValue is the value of one `unknowns` entry: a scalar, or a list
// when the YAML value is a list.
type unknownValue struct {
	items []string
	list  bool
}

// unknowns maps Jira field names (or ids) to values.
type unknowns map[string]unknownValue

func (u *unknowns) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("must be a mapping of Jira field names to values")
	}
	out := make(unknowns, len(raw))
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.TrimSpace(k) == "" {
			return fmt.Errorf("a field name is empty")
		}
		if v, ok, err := scalarValue(raw[k]); err == nil && ok {
			out[k] = unknownValue{items: []string{v}}
			continue
		}
		var list []json.RawMessage
		if json.Unmarshal(raw[k], &list) != nil {
			return fmt.Errorf("%s: must be a string, a number or a list of them", k)
		}
		val := unknownValue{list: true}
		for _, r := range list {
			v, ok, err := scalarValue(r)
			if err != nil || !ok {
				return fmt.Errorf("%s: list entries must be strings or numbers", k)
			}
			val.items = append(val.items, v)
		}
		out[k] = val
	}
	*u = out
	return nil
}

// scalarValue reads a JSON string, number or bool as text; ok is false for
// other values (null included).
func scalarValue(b []byte) (string, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", false, err
	}
	switch x := v.(type) {
	case string:
		return x, true, nil
	case json.Number:
		return x.String(), true, nil
	case bool:
		if x {
			return "true", true, nil
		}
		return "false", true, nil
	}
	return "", false, nil
}

// trimmed returns the non-empty trimmed entries of l.
func trimmed(l []string) []string {
	var out []string
	for _, v := range l {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

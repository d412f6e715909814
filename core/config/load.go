package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LoadFile reads and decodes the config file at path.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes a config from data; file names the source in errors.
func Parse(file string, data []byte) (*Config, error) {
	d := &decoder{file: file}
	cfg := &Config{File: file}

	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{Pos: Pos{File: file}, Msg: "the file is empty"}}
		}
		return nil, Errors{{Pos: Pos{File: file, Line: yamlErrLine(err)}, Msg: "invalid YAML: " + yamlErrMsg(err)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{Pos: d.pos(&extra), Msg: "more than one YAML document; a config is one document"}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{Pos: d.pos(root), Msg: "the config must be a mapping with keys such as routes, templates and actions" + oldFormatHint(root)}}
	}
	d.decodeStruct(root, reflect.ValueOf(cfg).Elem(), "")
	d.validate(cfg)
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Pos.Line < d.errs[j].Pos.Line })
		return nil, d.errs
	}
	sort.SliceStable(d.warns, func(i, j int) bool { return d.warns[i].Pos.Line < d.warns[j].Pos.Line })
	cfg.Warnings = d.warns
	return cfg, nil
}

func oldFormatHint(n *yaml.Node) string {
	if n.Kind == yaml.SequenceNode {
		return " (a top-level list is the Postee v1 format, which is not supported; see docs/configuration.md)"
	}
	return ""
}

// yamlErrMsg drops the "yaml: line N:" prefix, which Pos already says.
func yamlErrMsg(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.HasPrefix(s, "line ") {
		if _, rest, ok := strings.Cut(s, ": "); ok {
			return rest
		}
	}
	return s
}

// yamlErrLine extracts "line N" from a yaml.v3 syntax error.
func yamlErrLine(err error) int {
	s := err.Error()
	i := strings.Index(s, "line ")
	if i < 0 {
		return 0
	}
	s = s[i+5:]
	j := 0
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	n, _ := strconv.Atoi(s[:j])
	return n
}

type decoder struct {
	file  string
	errs  Errors
	warns Errors
}

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line} }

func (d *decoder) errorf(n *yaml.Node, what, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.pos(n), What: what, Msg: fmt.Sprintf(format, args...)})
}

// warnf records something the existing Postee silently ignored: postee
// ignores it too, and says so.
func (d *decoder) warnf(n *yaml.Node, what, format string, args ...any) {
	d.warns = append(d.warns, &Error{Pos: d.pos(n), What: what, Msg: fmt.Sprintf(format, args...)})
}

var (
	posType    = reflect.TypeOf(Pos{})
	actionType = reflect.TypeOf(Action{})
)

// decodeStruct decodes mapping n into struct v, rejecting unknown keys.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, what, "must be a mapping, not %s", kindOf(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		if seen[key] {
			d.errorf(k, what, "key %q appears twice", key)
			continue
		}
		seen[key] = true
		idx, ok := fields[key]
		if !ok {
			d.unknownKey(k, v.Type(), what, fields)
			continue
		}
		d.decodeValue(val, v.Field(idx), what, key)
		if key == "input" {
			if f := v.FieldByName("InputPos"); f.IsValid() {
				p := d.pos(val)
				if val.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
					p.Line++ // a block scalar starts on the line after `|`
				}
				f.Set(reflect.ValueOf(p))
			}
		}
	}
}

func (d *decoder) decodeValue(n *yaml.Node, v reflect.Value, what, key string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if isNull(n) {
		return // keep the zero value, as the existing tool did for `key:`
	}
	switch {
	case v.Type() == actionType:
		d.decodeAction(n, v.Addr().Interface().(*Action))
		return
	case v.Kind() == reflect.Struct:
		d.decodeStruct(n, v, what)
		return
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, what, "%s must be a list, not %s", key, kindOf(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			elem := s.Index(i)
			itemWhat := what
			if elem.Kind() == reflect.Struct && elem.Type() != actionType {
				itemWhat = d.entryName(key, item)
				setPos(elem, d.pos(item))
			}
			d.decodeValue(item, elem, itemWhat, key)
		}
		v.Set(s)
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, what, "%s must be %s, not %s", key, kindName(v.Kind()), kindOf(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if n.Tag == "!!binary" {
			d.errorf(n, what, "%s must be a string", key)
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil || n.Tag == "!!str" {
			d.errorf(n, what, "%s must be an integer, not %q", key, n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		var b bool
		if n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.errorf(n, what, "%s must be true or false, not %q", key, n.Value)
			return
		}
		v.SetBool(b)
	default:
		d.errorf(n, what, "%s: unsupported type %s", key, v.Type())
	}
}

// entryName is how an entry of a list is named in errors: `route "x"`.
func (d *decoder) entryName(listKey string, item *yaml.Node) string {
	kind := strings.TrimSuffix(listKey, "s")
	if item.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(item.Content); i += 2 {
			if item.Content[i].Value == "name" && item.Content[i+1].Kind == yaml.ScalarNode {
				return fmt.Sprintf("%s %q", kind, item.Content[i+1].Value)
			}
		}
	}
	return kind + " (unnamed)"
}

func setPos(v reflect.Value, p Pos) {
	if f := v.FieldByName("Pos"); f.IsValid() && f.Type() == posType {
		f.Set(reflect.ValueOf(p))
	}
}

// decodeAction keeps every key of an action entry for its plugin.
func (d *decoder) decodeAction(n *yaml.Node, a *Action) {
	a.Pos = d.pos(n)
	what := d.entryName("actions", n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, what, "must be a mapping, not %s", kindOf(n))
		return
	}
	a.Settings = map[string]any{}
	a.KeyPos = map[string]Pos{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		if _, dup := a.KeyPos[key]; dup {
			d.errorf(k, what, "key %q appears twice", key)
			continue
		}
		a.KeyPos[key] = d.pos(k)
		v, err := toJSONValue(val)
		if err != nil {
			d.errorf(val, what, "%s: %v", key, err)
			continue
		}
		a.Settings[key] = v
		switch key {
		case "name", "type", "runs-on":
			s, ok := v.(string)
			if !ok && v != nil {
				d.errorf(val, what, "%s must be a string, not %s", key, kindOf(val))
				continue
			}
			switch key {
			case "name":
				a.Name = s
			case "type":
				a.Type = strings.ToLower(strings.TrimSpace(s))
			case "runs-on":
				a.RunsOn = s
			}
		case "enable":
			b, ok := v.(bool)
			if !ok && v != nil {
				d.errorf(val, what, "enable must be true or false, not %q", val.Value)
				continue
			}
			a.Enable = b
		case "retry":
			r, err := parseRetry(v)
			if err != nil {
				d.errorf(val, what, "%v", err)
				continue
			}
			a.Retry = r
		}
	}
}

// toJSONValue converts a YAML node into JSON-compatible Go values.
func toJSONValue(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			return nil, nil
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case string, bool, int, int64, uint64, float64:
			return x, nil
		default:
			// timestamps, binary: keep the text as written
			return n.Value, nil
		}
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := toJSONValue(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping keys must be strings", n.Content[i].Line)
			}
			v, err := toJSONValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[n.Content[i].Value] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported YAML value")
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || (n.Tag == "" && n.Value == ""))
}

func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int", "!!float":
			return "a number (" + n.Value + ")"
		case "!!bool":
			return "a boolean (" + n.Value + ")"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Int:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	case reflect.Struct:
		return "a mapping"
	}
	return k.String()
}

// yamlFields maps yaml tag names of t's fields to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		m[name] = i
	}
	return m
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

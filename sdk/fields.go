package sdk

import (
	"errors"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// jsonFieldNames lists the json names of the fields of the struct v points
// to, the fields of embedded structs included (as encoding/json promotes
// them).
func jsonFieldNames(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	return structFieldNames(t)
}

func structFieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				names = append(names, structFieldNames(ft)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// exactKeys reports the keys of own that v's struct has no field for with
// exactly that spelling (encoding/json alone would match `URL` to `url`).
// Every such key is reported at once.
func exactKeys(own map[string]any, v any) error {
	names := jsonFieldNames(v)
	if names == nil {
		return nil
	}
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[n] = true
	}
	var bad []string
	for k := range own {
		if !known[k] {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	sort.Strings(names)
	var errs []error
	for _, k := range bad {
		msg := "unknown key " + strconv.Quote(k) + " (known: " + strings.Join(names, ", ") + ")"
		for _, n := range names {
			if strings.EqualFold(n, k) {
				msg = "unknown key " + strconv.Quote(k) + "; keys are matched exactly: did you mean " + strconv.Quote(n) + "?"
				break
			}
		}
		errs = append(errs, &SettingsError{Key: k, Message: msg})
	}
	return errors.Join(errs...)
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkevent"
)

// settings are the keys of a kubernetes action's entry.
type settings struct {
	Namespace  string                `json:"kube-namespace"`
	ConfigFile string                `json:"kube-config-file"`
	Selector   *string               `json:"kube-label-selector"`
	Actions    *kubeActions          `json:"kube-actions"`
	Timeout    *sdk.PositiveDuration `json:"timeout"`
}

// kubeActions is the kube-actions mapping: labels and annotations to set,
// each a mapping of key to value.
type kubeActions struct {
	Labels      map[string]string
	Annotations map[string]string
}

// UnmarshalJSON accepts `labels` and `annotations`, each a mapping whose
// values are strings (numbers and booleans are taken as their text).
func (k *kubeActions) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return sdk.SettingsErrorf("kube-actions", "%v", err)
	}
	if raw == nil {
		return nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return sdk.SettingsErrorf("kube-actions", "must be a mapping with labels and/or annotations")
	}
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	var out kubeActions
	for _, key := range keys {
		var dst *map[string]string
		switch key {
		case "labels":
			dst = &out.Labels
		case "annotations":
			dst = &out.Annotations
		default:
			return sdk.SettingsErrorf("kube-actions", "unknown key %q (known: annotations, labels)", key)
		}
		vals, err := stringMap(key, m[key])
		if err != nil {
			return err
		}
		*dst = vals
	}
	*k = out
	return nil
}

func stringMap(what string, v any) (map[string]string, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, sdk.SettingsErrorf("kube-actions", "%s must be a mapping of keys to values", what)
	}
	out := make(map[string]string, len(m))
	for key, val := range m {
		switch x := val.(type) {
		case string:
			out[key] = x
		case json.Number:
			out[key] = x.String()
		case bool:
			out[key] = strconv.FormatBool(x)
		case nil:
			return nil, sdk.SettingsErrorf("kube-actions", "%s: %q has no value (write \"\" for an empty value)", what, key)
		default:
			return nil, sdk.SettingsErrorf("kube-actions", "%s: the value of %q must be a string", what, key)
		}
	}
	return out, nil
}

// checkLabel validates a label key and, when it holds no placeholder, its
// value.
func checkLabel(key string, value sdkevent.Template) error {
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return sdk.SettingsErrorf("kube-actions", "labels: %q is not a valid label key: %s", key, strings.Join(errs, "; "))
	}
	if !value.HasPlaceholders() {
		if errs := validation.IsValidLabelValue(value.String()); len(errs) > 0 {
			return sdk.SettingsErrorf("kube-actions", "labels: %s: %q is not a valid label value: %s", key, value.String(), strings.Join(errs, "; "))
		}
	}
	return nil
}

// checkAnnotationKey validates an annotation key as the API server does.
func checkAnnotationKey(key string) error {
	if errs := validation.IsQualifiedName(strings.ToLower(key)); len(errs) > 0 {
		return sdk.SettingsErrorf("kube-actions", "annotations: %q is not a valid annotation key: %s", key, strings.Join(errs, "; "))
	}
	return nil
}

// quoteBounded quotes s for an error message, cut to a readable length.
func quoteBounded(s string) string {
	const max = 100
	if len(s) > max {
		return fmt.Sprintf("%q… (%d bytes)", strings.ToValidUTF8(s[:max], ""), len(s))
	}
	return strconv.Quote(s)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkevent"
)

// defaultTimeout bounds one execution (listing and patching every pod) when
// `timeout` is not set.
const defaultTimeout = 30 * time.Second

// selectorReq is one requirement of the label selector, its values parsed
// for placeholders.
type selectorReq struct {
	key    string
	op     selection.Operator
	values []sdkevent.Template
}

// entry is one label or annotation to set.
type entry struct {
	key   string
	value sdkevent.Template
}

// kubeAction patches the pods matching a selector. It is immutable after
// Configure, so executions may run concurrently.
type kubeAction struct {
	namespace string
	// selector is the selector as parsed; static is its canonical text when
	// no value holds a placeholder.
	selector []selectorReq
	static   string
	labels   []entry
	annots   []entry
	// placeholders is whether any value needs the event.
	placeholders bool
	timeout      time.Duration
	// server is the API server's scheme://host, for messages.
	server string
	client rest.Interface
}

var _ sdk.Action = (*kubeAction)(nil)

func newAction() sdk.Action { return &kubeAction{} }

// Configure validates the settings and loads the kubeconfig (a local file,
// or the in-cluster service account); it makes no request to the cluster.
func (a *kubeAction) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	a.namespace = strings.TrimSpace(s.Namespace)
	switch {
	case a.namespace == "":
		add(sdk.SettingsErrorf("kube-namespace", "is required: the namespace whose pods are patched"))
	default:
		if msgs := validation.IsDNS1123Label(a.namespace); len(msgs) > 0 {
			add(sdk.SettingsErrorf("kube-namespace", "%q is not a valid namespace: %s", a.namespace, strings.Join(msgs, "; ")))
		}
	}

	add(a.parseSelector(s.Selector))

	if s.Actions == nil || len(s.Actions.Labels)+len(s.Actions.Annotations) == 0 {
		add(sdk.SettingsErrorf("kube-actions", "is required: labels and/or annotations to set on the matching pods"))
	} else {
		for _, key := range sortedKeys(s.Actions.Labels) {
			e := entry{key: key, value: sdkevent.Parse(s.Actions.Labels[key])}
			if err := checkLabel(key, e.value); err != nil {
				add(err)
				continue
			}
			a.labels = append(a.labels, e)
			a.placeholders = a.placeholders || e.value.HasPlaceholders()
		}
		for _, key := range sortedKeys(s.Actions.Annotations) {
			if err := checkAnnotationKey(key); err != nil {
				add(err)
				continue
			}
			e := entry{key: key, value: sdkevent.Parse(s.Actions.Annotations[key])}
			a.annots = append(a.annots, e)
			a.placeholders = a.placeholders || e.value.HasPlaceholders()
		}
	}

	a.timeout = defaultTimeout
	if s.Timeout != nil {
		a.timeout = s.Timeout.D()
	}

	rc, err := restConfig(s.ConfigFile)
	add(err)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	client, err := newClient(rc)
	if err != nil {
		return sdk.SettingsErrorf("kube-config-file", "%v", err)
	}
	a.client = client
	a.server = serverOf(rc.Host)
	return nil
}

// parseSelector parses kube-label-selector as Kubernetes writes it. An empty
// selector, which would match every pod of the namespace, is refused.
func (a *kubeAction) parseSelector(p *string) error {
	const key = "kube-label-selector"
	if p == nil || strings.TrimSpace(*p) == "" {
		return sdk.SettingsErrorf(key, "is required (e.g. app=web); an empty selector would match every pod of the namespace")
	}
	sel, err := labels.Parse(*p)
	if err != nil {
		return sdk.SettingsErrorf(key, "%q is not a valid label selector: %v", *p, err)
	}
	reqs, _ := sel.Requirements()
	if sel.Empty() || len(reqs) == 0 {
		return sdk.SettingsErrorf(key, "%q selects every pod of the namespace; give at least one requirement (e.g. app=web)", *p)
	}
	placeholders := false
	for _, r := range reqs {
		sr := selectorReq{key: r.Key(), op: r.Operator()}
		for _, v := range r.Values().List() {
			t := sdkevent.Parse(v)
			placeholders = placeholders || t.HasPlaceholders()
			sr.values = append(sr.values, t)
		}
		a.selector = append(a.selector, sr)
	}
	a.placeholders = a.placeholders || placeholders
	if !placeholders {
		a.static = sel.String()
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// resolved is what one execution sends: the selector and the patch body.
type resolved struct {
	selector string
	patch    []byte
}

// resolve fills the placeholders from the event and builds the selector and
// the merge patch. Every error is permanent: the same event gives the same.
func (a *kubeAction) resolve(event []byte) (resolved, error) {
	var ev any
	if a.placeholders {
		v, err := sdkevent.Decode(event)
		if err != nil {
			return resolved{}, err
		}
		ev = v
	}

	var out resolved
	if a.static != "" {
		out.selector = a.static
	} else {
		sel := labels.NewSelector()
		for _, sr := range a.selector {
			vals := make([]string, 0, len(sr.values))
			for _, t := range sr.values {
				v, missing := t.Render(ev, sdkevent.NullMissing)
				if len(missing) > 0 {
					return resolved{}, fmt.Errorf("kube-label-selector: the event has no value for %s", strings.Join(missing, ", "))
				}
				vals = append(vals, v)
			}
			req, err := labels.NewRequirement(sr.key, sr.op, vals)
			if err != nil {
				return resolved{}, fmt.Errorf("kube-label-selector: value from the event for %s: %v", sr.key, boundErr(err))
			}
			sel = sel.Add(*req)
		}
		out.selector = sel.String()
	}

	meta := map[string]map[string]string{}
	if len(a.labels) > 0 {
		m := make(map[string]string, len(a.labels))
		for _, e := range a.labels {
			v, _ := e.value.Render(ev, sdkevent.NullMissing)
			if e.value.HasPlaceholders() {
				if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
					return resolved{}, fmt.Errorf("label %s: %s from the event is not a valid label value: %s", e.key, quoteBounded(v), strings.Join(msgs, "; "))
				}
			}
			m[e.key] = v
		}
		meta["labels"] = m
	}
	if len(a.annots) > 0 {
		m := make(map[string]string, len(a.annots))
		for _, e := range a.annots {
			v, _ := e.value.Render(ev, sdkevent.NullMissing)
			m[e.key] = v
		}
		meta["annotations"] = m
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return resolved{}, err
	}
	out.patch = patch
	return out, nil
}

// boundErr shortens an error whose text may quote a long value.
func boundErr(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}

// Execute lists the matching pods and patches each of them.
func (a *kubeAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	r, err := a.resolve(ex.Event)
	if err != nil {
		return sdk.Result{}, sdk.Permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()

	details := map[string]string{"namespace": a.namespace, "selector": r.selector}
	pods, err := a.listPods(ctx, r.selector)
	if err != nil {
		return sdk.Result{Details: details}, a.callError(fmt.Sprintf("list pods in namespace %s (%s)", a.namespace, a.server), err, details)
	}
	details["pods_matched"] = fmt.Sprint(len(pods))
	if len(pods) == 0 {
		details["pods_patched"] = "0"
		return sdk.Result{
			Output:  fmt.Sprintf("no pod in namespace %s matches %s; nothing patched", a.namespace, r.selector),
			Details: details,
		}, nil
	}

	var patched, gone []string
	var failures []podFailure
	for _, name := range pods {
		err := a.patchPod(ctx, name, r.patch)
		switch {
		case err == nil:
			patched = append(patched, name)
		case isNotFound(err):
			// Deleted since it was listed: there is nothing left to label.
			gone = append(gone, name)
		default:
			failures = append(failures, podFailure{name: name, err: err})
		}
	}
	details["pods_patched"] = fmt.Sprint(len(patched))
	if len(patched) > 0 {
		details["patched"] = joinBounded(patched)
	}
	if len(gone) > 0 {
		details["gone"] = joinBounded(gone)
	}
	out := summary(a.namespace, r.selector, len(pods), patched, gone)
	if len(failures) == 0 {
		return sdk.Result{Output: out, Details: details}, nil
	}
	names := make([]string, len(failures))
	for i, f := range failures {
		names[i] = f.name
	}
	details["failed"] = joinBounded(names)
	return sdk.Result{Output: out, Details: details}, a.podsError(failures, len(pods), details)
}

// summary is the execution's output.
func summary(ns, selector string, matched int, patched, gone []string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "patched %d of %d pods matching %s in namespace %s", len(patched), matched, selector, ns)
	if len(patched) > 0 {
		sb.WriteString(": ")
		sb.WriteString(joinBounded(patched))
	}
	if len(gone) > 0 {
		fmt.Fprintf(&sb, "; deleted before they could be patched: %s", joinBounded(gone))
	}
	return sb.String()
}

// joinBounded joins names with ", ", cut after a few kilobytes.
func joinBounded(names []string) string {
	const max = 4 << 10
	var sb strings.Builder
	for i, n := range names {
		if i > 0 {
			sb.WriteString(", ")
		}
		if sb.Len()+len(n) > max {
			fmt.Fprintf(&sb, "… (%d more)", len(names)-i)
			break
		}
		sb.WriteString(n)
	}
	return sb.String()
}

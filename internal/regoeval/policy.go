package regoeval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// DefaultTimeout bounds one evaluation of a route or template when the
// config does not set rego-timeout.
const DefaultTimeout = 2 * time.Second

// Restricted are the builtins routes and templates cannot call unless the
// config lists them in rego-allow-builtins, with what they reach: an event
// must not make postee send requests, resolve names, or read its own
// environment and configuration (opa.runtime returns the environment
// variables, secrets included). The net.cidr_* functions only compute on
// their arguments and stay available.
var Restricted = map[string]string{
	"http.send":          "the network",
	"net.lookup_ip_addr": "the network (DNS)",
	"opa.runtime":        "postee's runtime (its environment variables and configuration)",
}

// RestrictedNames lists Restricted's names, sorted.
func RestrictedNames() []string {
	names := make([]string, 0, len(Restricted))
	for n := range Restricted {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Policy is what user Rego may do: the restricted builtins the config
// allows, and how long one evaluation may take.
type Policy struct {
	// Allow lists restricted builtins allowed (rego-allow-builtins).
	Allow []string
	// Timeout bounds one evaluation; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Check reports names in Allow that are not restricted builtins.
func (p Policy) Check() error {
	for _, n := range p.Allow {
		if _, ok := Restricted[n]; !ok {
			return fmt.Errorf("rego-allow-builtins: %q is not a restricted builtin (those are %s; every other builtin is available)", n, strings.Join(RestrictedNames(), ", "))
		}
	}
	return nil
}

// TimeoutOrDefault is the evaluation deadline.
func (p Policy) TimeoutOrDefault() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return DefaultTimeout
}

func (p Policy) allows(name string) bool { return slices.Contains(p.Allow, name) }

var capsCache sync.Map // allow list key → *ast.Capabilities

// Capabilities are this OPA's capabilities without the restricted builtins
// the policy does not allow. Without http.send, no host may be reached
// (AllowNet is empty), which also keeps JSON schema builtins from fetching
// a $ref.
func (p Policy) Capabilities() *ast.Capabilities {
	allow := slices.Clone(p.Allow)
	sort.Strings(allow)
	key := strings.Join(allow, ",")
	if c, ok := capsCache.Load(key); ok {
		return c.(*ast.Capabilities)
	}
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool {
		_, restricted := Restricted[b.Name]
		return restricted && !p.allows(b.Name)
	})
	if !p.allows("http.send") {
		caps.AllowNet = []string{}
	}
	c, _ := capsCache.LoadOrStore(key, caps)
	return c.(*ast.Capabilities)
}

// Explain rewrites the compiler's message about an undefined function when
// the function is a restricted builtin.
func Explain(msg string) string {
	name, ok := strings.CutPrefix(msg, "undefined function ")
	if !ok {
		return msg
	}
	what, ok := Restricted[name]
	if !ok {
		return msg
	}
	return fmt.Sprintf("builtin %s is not allowed in routes and templates: it reaches %s (list it in the config's rego-allow-builtins to allow it)", name, what)
}

// Limit returns the option that stops an evaluation when ctx ends or d has
// passed, and the function that releases it, reporting whether d passed.
func Limit(ctx context.Context, d time.Duration) (rego.EvalOption, func() bool) {
	c := topdown.NewCancel()
	expired := new(atomic.Bool)
	t := time.AfterFunc(d, func() {
		expired.Store(true)
		c.Cancel()
	})
	stopCtx := func() bool { return true }
	if ctx.Done() != nil {
		stopCtx = context.AfterFunc(ctx, c.Cancel)
	}
	return rego.EvalExternalCancel(c), func() bool {
		t.Stop()
		stopCtx()
		return expired.Load()
	}
}

// ErrDeadline is what the errors of an evaluation stopped at its deadline
// wrap.
var ErrDeadline = errors.New("rego evaluation deadline exceeded")

// TimeoutMessage says an evaluation was stopped at its deadline.
func TimeoutMessage(d time.Duration) string {
	return fmt.Sprintf("evaluation stopped after %s (rego-timeout)", d)
}

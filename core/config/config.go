package config

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a config file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.File == "" {
		return fmt.Sprintf("line %d", p.Line)
	}
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Config is one loaded configuration file.
type Config struct {
	// File is the path the config was read from ("" when parsed from bytes).
	File string `yaml:"-"`

	Name             string     `yaml:"name"`
	AquaServer       string     `yaml:"aqua-server"`
	MaxDBSize        string     `yaml:"max-db-size"`
	DBVerifyInterval int        `yaml:"db-verify-interval"`
	DeleteOldData    int        `yaml:"delete-old-data"`
	Routes           []Route    `yaml:"routes"`
	Templates        []Template `yaml:"templates"`
	Actions          []Action   `yaml:"actions"`
	Rules            []Rule     `yaml:"rules"`
	// Runners declares runners beyond those named by runs-on, and each
	// runner's NKey (controller/runner mode).
	Runners []Runner `yaml:"runners"`

	// RegoTimeout bounds one evaluation of a route or template ("2s" when
	// empty); checked by the engine.
	RegoTimeout string `yaml:"rego-timeout"`
	// RegoAllowBuiltins lists the restricted builtins (http.send,
	// net.lookup_ip_addr, opa.runtime) routes and templates may call.
	RegoAllowBuiltins []string `yaml:"rego-allow-builtins"`
	// PluginChecksums pin plugin binaries by type (sha256).
	PluginChecksums []PluginChecksum `yaml:"plugin-checksums"`

	// Warnings are what the existing Postee silently ignored and postee
	// ignores too, saying so: unknown and older keys, unused entries that
	// would not load, routes naming undefined actions or no template.
	// `postee validate --strict` treats them as errors.
	Warnings Errors `yaml:"-"`
}

// PluginChecksum pins the plugin binary of one action type.
type PluginChecksum struct {
	Pos Pos `yaml:"-"`

	Type   string `yaml:"type"`
	SHA256 string `yaml:"sha256"`
}

// RunsOnOrigin as an action's runs-on runs it on the runner the event came
// from (named by the producer, or the runner that received it).
const RunsOnOrigin = "@origin"

// Runner is a postee runner known to the controller.
type Runner struct {
	Pos Pos `yaml:"-"`

	Name string `yaml:"name"`
	// NKey is the runner's public NKey (U...), when runners authenticate
	// with NKeys.
	NKey string `yaml:"nkey"`
}

// RunnerNames lists every runner: those declared and those named by an
// action's runs-on, sorted, without duplicates.
func (c *Config) RunnerNames() []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if n != "" && n != RunsOnOrigin && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, r := range c.Runners {
		add(r.Name)
	}
	for _, a := range c.Actions {
		add(a.RunsOn)
	}
	sort.Strings(out)
	return out
}

// Route decides which events reach which actions.
type Route struct {
	Pos Pos `yaml:"-"`
	// InputPos is where the `input` value starts (for Rego error lines).
	InputPos Pos `yaml:"-"`

	Name             string       `yaml:"name"`
	Input            string       `yaml:"input"`
	InputFiles       []string     `yaml:"input-files"`
	Actions          []string     `yaml:"actions"`
	Template         string       `yaml:"template"`
	SerializeActions bool         `yaml:"serialize-actions"`
	Plugins          RoutePlugins `yaml:"plugins"`
}

// RoutePlugins are the route-level behaviours of the existing Postee.
type RoutePlugins struct {
	AggregateMessageNumber  int      `yaml:"aggregate-message-number"`
	AggregateMessageTimeout string   `yaml:"aggregate-message-timeout"`
	UniqueMessageProps      []string `yaml:"unique-message-props"`
	UniqueMessageTimeout    string   `yaml:"unique-message-timeout"`
}

// Configured reports whether any route plugin is set.
func (p RoutePlugins) Configured() bool {
	return p.AggregateMessageNumber != 0 || p.AggregateMessageTimeout != "" ||
		len(p.UniqueMessageProps) > 0 || p.UniqueMessageTimeout != ""
}

// Template renders an event into a message.
type Template struct {
	Pos Pos `yaml:"-"`

	Name               string `yaml:"name"`
	RegoPackage        string `yaml:"rego-package"`
	RegoFile           string `yaml:"rego-file"`
	Body               string `yaml:"body"`
	URL                string `yaml:"url"`
	LegacyScanRenderer string `yaml:"legacy-scan-renderer"`
	// AllowHTTP lets url be plain http (default: https only).
	AllowHTTP bool `yaml:"allow-http"`
}

// Action is one configured action. The keys postee reads itself are fields;
// Settings holds every key of the entry for the action's plugin.
type Action struct {
	Pos Pos

	Name   string
	Type   string // lower-cased
	Enable bool
	RunsOn string
	// Retry is the `retry` key (nil: the defaults).
	Retry *Retry
	// Settings holds every key of the entry, host keys included, as
	// JSON-compatible values.
	Settings map[string]any
	// KeyPos is where each key of the entry is.
	KeyPos map[string]Pos
}

// PosOf returns where key is in the action entry, or the entry's own
// position when the key is absent or empty.
func (a *Action) PosOf(key string) Pos {
	if p, ok := a.KeyPos[key]; ok && key != "" {
		return p
	}
	return a.Pos
}

// Rule is informational (kept from the existing format).
type Rule struct {
	Name string `yaml:"name"`
}

// Route returns the route named name.
func (c *Config) Route(name string) (*Route, bool) {
	for i := range c.Routes {
		if c.Routes[i].Name == name {
			return &c.Routes[i], true
		}
	}
	return nil, false
}

// Template returns the template named name.
func (c *Config) Template(name string) (*Template, bool) {
	for i := range c.Templates {
		if c.Templates[i].Name == name {
			return &c.Templates[i], true
		}
	}
	return nil, false
}

// Action returns the action named name.
func (c *Config) Action(name string) (*Action, bool) {
	for i := range c.Actions {
		if c.Actions[i].Name == name {
			return &c.Actions[i], true
		}
	}
	return nil, false
}

// Error is one problem in a config file.
type Error struct {
	Pos Pos
	// What is `route "x"`, `template "y"`, `action "z"` or empty.
	What string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	b.WriteString(": ")
	if e.What != "" {
		b.WriteString(e.What)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

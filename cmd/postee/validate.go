package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/pluginhost"
	"github.com/postee-dev/postee/core/server"
)

func newValidateCmd(o *options, stdout, stderr io.Writer) *cobra.Command {
	var strict bool
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Load the config, compile its Rego and configure its actions in their plugins, then exit",
		Long: `validate loads the config as postee would start it: YAML, routes, templates
(bundled and from --rego-templates), filters, and each used action configured
in its plugin. Errors fail it. Warnings (what postee ignores, as the existing
Postee did: unknown or older keys, unused entries that would not load, routes
naming undefined actions or without template, a script file missing on this
machine) are printed and pass, unless --strict, which fails on any of them.
The verdict is the last line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.applyEnv()
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return validate(ctx, o, strict, stdout, stderr)
		},
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "treat every warning as an error (for CI checks of configs)")
	return cmd
}

func validate(ctx context.Context, o *options, strict bool, stdout, stderr io.Writer) error {
	cfg, err := config.LoadFile(o.cfgFile)
	if err != nil {
		return err
	}
	// --log-format and --log-level apply (logging.go).
	log := hclog.NewInterceptLogger(o.log.loggerOptions(o.debug, stderr))
	plugins := &pluginWarnings{cfg: cfg}
	log.RegisterSink(plugins)
	// HasStore: the store itself is not opened to validate.
	p, err := engine.Compile(ctx, cfg, engine.CompileOptions{FiltersDir: filtersDir(), TemplatesDir: o.templatesDir, Logger: log, HasStore: true})
	if err != nil {
		return err
	}
	sums, err := o.checksums()
	if err != nil {
		return err
	}
	host := pluginhost.New(pluginhost.Options{Dir: o.pluginDir, Logger: log, Checksums: sums})
	err = p.ConfigureActions(ctx, server.HostExecutor(host))
	// Stopped before the verdict, so that no log line follows it.
	host.Close()
	if err != nil {
		return err
	}
	located := plugins.list()
	for _, w := range located {
		log.Warn(w.Error()) // the plugin's warning, pointed at its line
	}
	warnings := append(p.Warnings(), located...)
	if strict && len(warnings) > 0 {
		return fmt.Errorf("%s: %d %s, refused by --strict:\n%w", o.cfgFile, len(warnings), plural(len(warnings), "warning"), errors.Join(warnings...))
	}
	note := ""
	if len(warnings) > 0 {
		note = fmt.Sprintf(" with %d %s (above)", len(warnings), plural(len(warnings), "warning"))
	}
	types := p.ActionTypes()
	if len(types) == 0 {
		types = []string{"none"}
	}
	fmt.Fprintf(stdout, "%s: valid%s (%d routes, %d templates, %d actions; plugins: %s)\n",
		o.cfgFile, note, len(cfg.Routes), len(cfg.Templates), len(cfg.Actions), strings.Join(types, ", "))
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// pluginWarnings collects the warnings plugins log while their actions are
// configured (a script file missing on this machine, ...), pointed at the
// action's key in the config when the plugin names them.
type pluginWarnings struct {
	cfg  *config.Config
	mu   sync.Mutex
	errs []error
}

func (w *pluginWarnings) Accept(name string, level hclog.Level, msg string, args ...any) {
	// postee's own warnings (name "postee") are the pipeline's, counted
	// there; these come from plugins and the plugin host.
	if level < hclog.Warn || name == "postee" {
		return
	}
	var action, key string
	for i := 0; i+1 < len(args); i += 2 {
		k, _ := args[i].(string)
		v := fmt.Sprint(args[i+1])
		switch k {
		case "action":
			action = v
		case "key":
			key = v
		}
	}
	var err error
	if a, ok := w.cfg.Action(action); ok {
		m := msg
		if key != "" {
			m = key + ": " + msg
		}
		err = fmt.Errorf("%s: action %q: %s", a.PosOf(key), action, m)
	} else {
		err = fmt.Errorf("%s: %s", name, msg)
	}
	w.mu.Lock()
	w.errs = append(w.errs, err)
	w.mu.Unlock()
}

func (w *pluginWarnings) list() []error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]error(nil), w.errs...)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"sync"

	"github.com/postee-dev/postee/sdk"
)

// stdoutMu serializes writes to the process's standard output across every
// stdout action the plugin serves.
var stdoutMu sync.Mutex

// stdoutAction prints messages. Its fields are set at creation and never
// change; mu guards w.
type stdoutAction struct {
	mu *sync.Mutex
	// w is where messages go; nil means os.Stdout as it is at the time of
	// the write (go-plugin replaces os.Stdout with a pipe to the host when
	// the plugin starts serving).
	w io.Writer
}

var (
	_ sdk.Action      = (*stdoutAction)(nil)
	_ sdk.EventReader = (*stdoutAction)(nil)
)

func newAction() sdk.Action { return &stdoutAction{mu: &stdoutMu} }

// ReadsEvent is false: the action prints the rendered message only
// (sdk.EventReader), so postee leaves the event out of its executions.
func (a *stdoutAction) ReadsEvent() bool { return false }

// Configure accepts no settings besides postee's own keys.
func (a *stdoutAction) Configure(_ context.Context, cfg sdk.Config) error {
	var keys []string
	for k := range cfg.Settings.Raw() {
		if !sdk.IsHostKey(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		errs = append(errs, sdk.SettingsErrorf(k, "unknown key %q: the stdout action has no settings", k))
	}
	return errors.Join(errs...)
}

// Execute writes the message with a single Write while holding the lock.
func (a *stdoutAction) Execute(_ context.Context, ex *sdk.Execution) (sdk.Result, error) {
	out := format(ex.Message)
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.w
	if w == nil {
		w = os.Stdout
	}
	n, err := w.Write(out)
	res := sdk.Result{Details: map[string]string{"bytes": strconv.Itoa(n)}}
	if err != nil {
		return res, fmt.Errorf("write to stdout: %w", err)
	}
	return res, nil
}

// format renders a message as printed: the title line when there is a
// title other than "-" (the raw-message templates' placeholder), then the
// description and a newline.
func format(m sdk.Message) []byte {
	var n int
	title := m.Title != "" && m.Title != "-"
	if title {
		n = len(m.Title) + 1
	}
	b := make([]byte, 0, n+len(m.Description)+1)
	if title {
		b = append(b, m.Title...)
		b = append(b, '\n')
	}
	b = append(b, m.Description...)
	return append(b, '\n')
}

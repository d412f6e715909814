// Command postee is the postee binary: a webhook server that routes security
// events through Rego to action plugins. See README.md.
package main

import (
	"fmt"
	"os"

	"github.com/postee-dev/postee/sdk/protocol"
)

func main() {
	// A server in --controller-mode raises the limit once its flags are
	// read (runServer).
	protocol.TuneGCLimit(protocol.PosteeMemoryLimit)
	if err := newRootCmd(os.Stdout, os.Stderr).Execute(); err != nil {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "postee:", msg)
		}
		os.Exit(exitCode(err)) // 1, or what the command chose (postee test)
	}
}

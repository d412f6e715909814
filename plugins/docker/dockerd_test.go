package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/moby/moby/client"

	"github.com/postee-dev/postee/internal/testdocker"
)

// The tests run against a real Docker Engine: TestMain starts a private
// dockerd with internal/testdocker (its own socket, data and exec
// directories, a tiny image holding Debian's static busybox), points
// DOCKER_HOST at it, and stops it afterwards. Without dockerd (or root, or
// busybox) the tests that need it are skipped, except when CI is set: then
// they fail, because CI installs docker.io and busybox-static.

// testImage is the busybox image imported for the tests.
const testImage = testdocker.Image

// noDocker is why the Docker tests cannot run here; empty when they can.
var noDocker string

// testClient talks to the test daemon.
var testClient *client.Client

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	d, err := testdocker.Start()
	if err != nil {
		if testdocker.InCI() {
			fmt.Fprintf(os.Stderr, "docker tests: %v (CI is set: install docker.io and busybox-static)\n", err)
			return 1
		}
		noDocker = err.Error()
	} else {
		testClient = d.Client
		// The actions find the daemon the way they do in production.
		d.Setenv()
	}
	code := m.Run()
	if d != nil {
		if err := d.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "docker tests: stop dockerd: %v\n", err)
		}
	}
	return code
}

// requireDocker skips t when no test daemon runs.
func requireDocker(t *testing.T) {
	t.Helper()
	if noDocker != "" {
		t.Skipf("no Docker Engine for the tests: %s", noDocker)
	}
}

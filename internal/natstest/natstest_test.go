package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/postee-dev/postee/internal/testutil"
)

// A route port another process took between its choice and the node's
// start: the cluster starts again on other ports.
func TestStartRetriesOnATakenRoutePort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	calls := 0
	freePort = func(t testing.TB) int {
		calls++
		if calls == 2 { // the first attempt's first route port
			return takenPort
		}
		return testutil.FreePort(t)
	}
	readyWait = 2 * time.Second
	defer func() { freePort, readyWait = testutil.FreePort, 10*time.Second }()

	c := Start(t, 3)
	for i, o := range c.opts {
		if o.Cluster.Port == takenPort {
			t.Fatalf("node %d kept the taken route port %d", i+1, takenPort)
		}
	}
	if calls < 8 { // the cluster's name and 3 route ports, twice
		t.Fatalf("the cluster was laid out %d/4 times, want a second layout", calls)
	}
}

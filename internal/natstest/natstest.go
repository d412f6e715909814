// Package natstest runs NATS JetStream clusters on loopback inside a test
// process: n nats-servers with routes to each other, each with its own
// JetStream directory, which a test can stop and start again one by one.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/postee-dev/postee/internal/testutil"
)

// freePort and readyWait are variables for the package's own test.
var (
	freePort  = testutil.FreePort
	readyWait = 10 * time.Second
)

// Cluster is a running JetStream cluster on loopback.
type Cluster struct {
	t     testing.TB
	name  string
	opts  []*server.Options
	nodes []*server.Server
}

// Start starts n nodes (client and route ports from the OS) and waits until
// JetStream has a meta leader. A route port is chosen free and given to
// the node a moment later, so another process can take it in between: a
// node that does not come up is tried again, the whole cluster on new
// ports, twice.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	var err error
	for range 3 {
		c := newCluster(t, n)
		if err = c.startAll(); err == nil {
			t.Cleanup(c.Shutdown)
			c.WaitReady()
			return c
		}
		c.Shutdown()
	}
	t.Fatal(err)
	return nil
}

// newCluster lays out n nodes on free route ports.
func newCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, name: fmt.Sprintf("postee-test-%d", freePort(t))}
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	for i := 0; i < n; i++ {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: c.name, Host: "127.0.0.1", Port: ports[i],
			},
			Routes: routes,
		}
		if n == 1 {
			o.Cluster, o.Routes = server.ClusterOpts{}, nil
		}
		c.opts = append(c.opts, o)
		c.nodes = append(c.nodes, nil)
	}
	return c
}

// startAll starts every node; the first that does not come up ends it.
func (c *Cluster) startAll() error {
	for i := range c.opts {
		if err := c.tryNode(i); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) startNode(i int) {
	c.t.Helper()
	if err := c.tryNode(i); err != nil {
		c.t.Fatal(err)
	}
}

// tryNode starts node i and waits until it takes connections.
func (c *Cluster) tryNode(i int) error {
	s, err := server.NewServer(c.opts[i])
	if err != nil {
		return fmt.Errorf("nats node %d: %v", i+1, err)
	}
	go s.Start()
	if !s.ReadyForConnections(readyWait) {
		s.Shutdown()
		return fmt.Errorf("nats node %d not ready (route port %d)", i+1, c.opts[i].Cluster.Port)
	}
	// A restarted node keeps its client port.
	c.opts[i].Port = s.Addr().(*net.TCPAddr).Port
	c.nodes[i] = s
	return nil
}

// WaitReady waits until every running node sees a JetStream meta leader.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range c.nodes {
		if s == nil {
			continue
		}
		for !s.JetStreamIsCurrent() {
			if time.Now().After(deadline) {
				c.t.Fatalf("JetStream cluster %s has no meta leader", c.name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// URLs is the comma-separated list of the client URLs of every node.
func (c *Cluster) URLs() string {
	var out []string
	for i := range c.opts {
		out = append(out, c.URL(i))
	}
	return strings.Join(out, ",")
}

// URL is node i's client URL.
func (c *Cluster) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port) }

// Node returns node i (nil while stopped).
func (c *Cluster) Node(i int) *server.Server { return c.nodes[i] }

// Stop stops node i, as a lost machine would.
func (c *Cluster) Stop(i int) {
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

// Restart starts node i again on its ports and JetStream directory.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Stop(i)
	c.startNode(i)
	c.WaitReady()
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for i := range c.nodes {
		c.Stop(i)
	}
}

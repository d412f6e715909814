package testutil

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer collects a stream written by other goroutines (a process's
// output, a logger) and signals every write.
type Buffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

// NewBuffer returns an empty Buffer.
func NewBuffer() *Buffer { return &Buffer{wrote: make(chan struct{}, 1)} }

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.buf.Write(p)
	b.mu.Unlock()
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Wrote receives after writes (one value for any number of writes since
// the last receive).
func (b *Buffer) Wrote() <-chan struct{} { return b.wrote }

// WaitFor waits until cond holds on the content, up to d, or fails the
// test saying what it waited for and what it got.
func (b *Buffer) WaitFor(t testing.TB, what string, d time.Duration, cond func(string) bool) string {
	t.Helper()
	timeout := time.After(d)
	for {
		s := b.String()
		if cond(s) {
			return s
		}
		select {
		case <-b.wrote:
		case <-timeout:
			t.Fatalf("timed out waiting for %s; got:\n%s", what, s)
		}
	}
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// server the caller starts on it (or restarts on the same address).
//
// The port is chosen below the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range), where the kernel never puts a
// listener on port 0 nor an outgoing connection: between the check and the
// caller's own bind, the other tests running meanwhile, which take ports
// from that range all the time, cannot take this one. A port is given out
// once per test binary. Where the range cannot be read, the kernel picks.
func FreePort(t testing.TB) int {
	t.Helper()
	if p, ok := portBelowEphemeral(); ok {
		return p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// portSpan is how many ports under the ephemeral range FreePort draws from.
const portSpan = 16384

var given = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// ephemeralLow is the first port of the kernel's ephemeral range, 0 when
// unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}

// portBelowEphemeral draws ports under the ephemeral range until one is
// free and not given out before.
func portBelowEphemeral() (int, bool) {
	hi := ephemeralLow()
	lo := max(hi-portSpan, 1024)
	if hi-lo < 1024 {
		return 0, false
	}
	given.Lock()
	defer given.Unlock()
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		if given.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		_ = l.Close()
		given.ports[p] = true
		return p, true
	}
	return 0, false
}

// Collector gathers values produced by other goroutines and lets a test
// wait, without sleeping, until they satisfy a condition.
type Collector[T any] struct {
	mu      sync.Mutex
	items   []T
	changed chan struct{} // closed and replaced on every Add
}

// NewCollector returns an empty Collector.
func NewCollector[T any]() *Collector[T] { return &Collector[T]{changed: make(chan struct{})} }

// Add records v and wakes the waiters.
func (c *Collector[T]) Add(v T) {
	c.mu.Lock()
	c.items = append(c.items, v)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// All returns a copy of the values so far.
func (c *Collector[T]) All() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.items...)
}

// Count counts the values satisfying match.
func (c *Collector[T]) Count(match func(T) bool) int {
	n := 0
	for _, v := range c.All() {
		if match(v) {
			n++
		}
	}
	return n
}

// Await returns the first value satisfying match, waiting until ctx ends.
func (c *Collector[T]) Await(ctx context.Context, match func(T) bool) (T, bool) {
	for {
		c.mu.Lock()
		for _, v := range c.items {
			if match(v) {
				c.mu.Unlock()
				return v, true
			}
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			var zero T
			return zero, false
		}
	}
}

// MustAwait is Await bounded by d, failing the test on timeout.
func (c *Collector[T]) MustAwait(t testing.TB, what string, d time.Duration, match func(T) bool) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	v, ok := c.Await(ctx, match)
	if !ok {
		t.Fatalf("timed out waiting for %s; got %+v", what, c.All())
	}
	return v
}

// MustAwaitCount waits up to d until n values were collected.
func (c *Collector[T]) MustAwaitCount(t testing.TB, what string, d time.Duration, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		c.mu.Lock()
		got, ch := len(c.items), c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: %d of %d", what, got, n)
		}
	}
}

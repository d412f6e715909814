package testutil

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestBufferWaitFor(t *testing.T) {
	b := NewBuffer()
	go func() {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(b, "line %d\n", i)
		}
	}()
	got := b.WaitFor(t, "three lines", 5*time.Second, func(s string) bool { return strings.Count(s, "\n") == 3 })
	if got != "line 0\nline 1\nline 2\n" {
		t.Fatalf("got %q", got)
	}
}

func TestCollector(t *testing.T) {
	c := NewCollector[int]()
	go func() {
		for i := 1; i <= 5; i++ {
			c.Add(i)
		}
	}()
	if v := c.MustAwait(t, "a 4", 5*time.Second, func(v int) bool { return v == 4 }); v != 4 {
		t.Fatalf("got %d", v)
	}
	c.MustAwaitCount(t, "five values", 5*time.Second, 5)
	if n := c.Count(func(v int) bool { return v%2 == 1 }); n != 3 {
		t.Fatalf("odd values = %d", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := c.Await(ctx, func(v int) bool { return v > 5 }); ok {
		t.Fatal("found a value that was never added")
	}
}

func TestFreePort(t *testing.T) {
	p := FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("port %d: %v", p, err)
	}
	l.Close()
}

// TestFreePortOutsideTheEphemeralRange: the ports are ones the kernel does
// not hand to other listeners on port 0 or to outgoing connections, and
// none is given twice.
func TestFreePortOutsideTheEphemeralRange(t *testing.T) {
	lo := ephemeralLow()
	if lo == 0 {
		t.Skip("no /proc/sys/net/ipv4/ip_local_port_range here")
	}
	seen := map[int]bool{}
	for range 50 {
		p := FreePort(t)
		if p >= lo || p < 1024 {
			t.Fatalf("port %d is not below the ephemeral range starting at %d", p, lo)
		}
		if seen[p] {
			t.Fatalf("port %d given twice", p)
		}
		seen[p] = true
	}
}

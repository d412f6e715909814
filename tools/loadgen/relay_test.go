package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary be the relay process that
// startRelayProcess starts (it runs os.Executable with -serve-relay).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve-relay" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestRelayProcess(t *testing.T) {
	sk, err := startSink()
	if err != nil {
		t.Fatal(err)
	}
	defer sk.close()
	rp, err := startRelayProcess(sk.URL(), 4, 400)
	if err != nil {
		t.Fatal(err)
	}
	if rp.pid() == os.Getpid() {
		t.Fatal("the relay runs in the test's own process")
	}
	c, err := newCorpus(20)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(rp.URL(), "application/json", bytes.NewReader(c.body(7)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("relay process answered %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if missing := sk.waitFor(ctx, []int{7}); len(missing) > 0 {
		t.Fatal("the event never reached the sink")
	}
	if cpu, err := cpuTime(rp.pid()); err != nil || cpu < 0 {
		t.Errorf("relay process CPU: %v, %v", cpu, err)
	}
	// Closing its standard input ends it, well before close would kill it.
	t0 := time.Now()
	rp.close()
	if d := time.Since(t0); d >= stopGrace {
		t.Errorf("the relay process took %s to exit", d)
	}
	select {
	case <-rp.done:
	default:
		t.Error("the relay process is still running after close")
	}
}

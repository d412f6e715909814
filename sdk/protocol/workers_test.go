package protocol

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// goroutineID is the id runtime.Stack prints for the calling goroutine.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// Functions run one after another reuse one goroutine (its stack grown
// already); concurrent ones get goroutines of their own.
func TestWorkersReuseIdleGoroutines(t *testing.T) {
	w := newWorkers()
	defer w.close()
	ids := map[uint64]bool{}
	for range 20 {
		done := make(chan uint64)
		w.run(func() { done <- goroutineID() })
		ids[<-done] = true
	}
	// A worker that just finished may not be waiting yet when the next
	// function comes: then another one starts. Not one per function.
	if len(ids) > 10 {
		t.Fatalf("20 functions one after another ran on %d goroutines", len(ids))
	}

	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(4)
	concurrent := make(chan uint64, 4)
	for range 4 {
		w.run(func() {
			concurrent <- goroutineID()
			started.Done()
			<-release
		})
	}
	started.Wait()
	close(release)
	seen := map[uint64]bool{}
	for range 4 {
		seen[<-concurrent] = true
	}
	if len(seen) != 4 {
		t.Fatalf("4 concurrent functions ran on %d goroutines", len(seen))
	}
}

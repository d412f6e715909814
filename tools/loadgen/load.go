package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postee-dev/postee/internal/testevents"
)

// corpusSize is how many distinct reports are generated before the run.
// Event id n is report n%corpusSize with its "id" rewritten to n, so that any
// number of events can be sent without generating JSON during the run.
const corpusSize = 1024

// corpus holds the pre-generated event bodies.
type corpus struct {
	bodies [][]byte
	idAt   []int // offset of the id's digits in bodies[k]
}

func newCorpus(vulns int) (*corpus, error) {
	c := &corpus{bodies: make([][]byte, corpusSize), idAt: make([]int, corpusSize)}
	for k := range corpusSize {
		b := testevents.Trivy(k, vulns)
		key := []byte(`"id":"` + strconv.Itoa(k) + `"`)
		at := bytes.Index(b, key)
		if at < 0 {
			return nil, fmt.Errorf("testevents.Trivy(%d): no %s in the report", k, key)
		}
		c.bodies[k] = b
		c.idAt[k] = at + len(`"id":"`)
	}
	return c, nil
}

// body returns the event with id n. The result must not be modified.
func (c *corpus) body(n int) []byte {
	k := n % corpusSize
	if n == k {
		return c.bodies[k]
	}
	b, at := c.bodies[k], c.idAt[k]
	end := at + len(strconv.Itoa(k))
	out := make([]byte, 0, len(b)+20)
	out = append(out, b[:at]...)
	out = strconv.AppendInt(out, int64(n), 10)
	return append(out, b[end:]...)
}

// outcome classifies a POST's result.
type outcome uint8

const (
	accepted outcome = iota // 2xx
	rejected                // 503: postee's queue is full
	otherStatus
	failed // transport error
)

// sent is one POST.
type sent struct {
	id       int
	start    time.Time
	answered time.Time // the answer arrived
	outcome  outcome
	measured bool // started in the measured phase (not the warm-up)
}

// plan says when senders stop.
type plan struct {
	warmupEnd time.Time
	end       time.Time // duration mode: no POST starts after it
	events    int64     // events mode (>0): measured events to send
	deadline  time.Time // events mode: stop anyway at this time
}

// send runs senders concurrent senders POSTing to url until the plan is
// done or ctx ends, and returns every POST made.
func send(ctx context.Context, url string, c *corpus, senders int, p plan) []sent {
	var (
		next atomic.Int64 // next event id
		left atomic.Int64 // events mode: measured events still to send
		mu   sync.Mutex
		all  []sent
		wg   sync.WaitGroup
	)
	left.Store(p.events)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := newClient(senders)
			defer client.CloseIdleConnections()
			var mine []sent
			for ctx.Err() == nil {
				now := time.Now()
				measured := !now.Before(p.warmupEnd)
				if p.events > 0 {
					if now.After(p.deadline) || measured && left.Add(-1) < 0 {
						break
					}
				} else if !now.Before(p.end) {
					break
				}
				id := int(next.Add(1) - 1)
				s := sent{id: id, start: now, measured: measured}
				s.outcome = post(ctx, client, url, c.body(id))
				s.answered = time.Now()
				mine = append(mine, s)
				if s.outcome == rejected {
					// Back off briefly instead of spinning on a full queue.
					select {
					case <-ctx.Done():
					case <-time.After(2 * time.Millisecond):
					}
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all
}

// newClient is one sender's keep-alive client.
func newClient(senders int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        senders,
			MaxIdleConnsPerHost: senders,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

func post(ctx context.Context, client *http.Client, url string, body []byte) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return failed
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return failed
	}
	// Read to the end so that the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return accepted
	case resp.StatusCode == http.StatusServiceUnavailable:
		return rejected
	default:
		return otherStatus
	}
}

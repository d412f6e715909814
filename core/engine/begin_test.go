package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/store"
)

// slowDisk is an Inbox whose writes end when the test says, with the
// error it gives.
type slowDisk struct {
	synced   chan error
	mu       sync.Mutex
	finished []string
}

func (d *slowDisk) Accept(a store.Accepted) error {
	wait, err := d.Begin(a)
	if err != nil {
		return err
	}
	return wait()
}

// Begin's wait takes the next error the test gives, once: every call of
// it returns that error.
func (d *slowDisk) Begin(store.Accepted) (func() error, error) {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() { err = <-d.synced })
		return err
	}, nil
}

func (d *slowDisk) Finish(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finished = append(d.finished, id)
	return nil
}

func (d *slowDisk) Unfinished() ([]store.Accepted, error) { return nil, nil }

// An event's work starts while it is written down; the answer (Submit's
// return) waits for the disk, and says when the write failed.
func TestWorkStartsWhileTheEventIsWritten(t *testing.T) {
	const cfg = `
routes:
- name: all
  actions: [send]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: send
  type: test
  enable: true
`
	for _, tc := range []struct {
		name          string
		write         error
		wantErr       error
		accepted, rej int64
	}{
		{name: "written", accepted: 1},
		{name: "write failed", write: errors.New("disk full"), wantErr: ErrNotStored, rej: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := &slowDisk{synced: make(chan error)}
			rec := &recorder{started: make(chan string, 1)}
			st := openStore(t)
			e := load(t, cfg, rec, Options{Store: st, Inbox: disk, Durable: true, Workers: 1})
			e.Start()
			defer e.Stop(context.Background())
			defer close(disk.synced) // a failed test's Submit returns, and Stop can end

			submitted := make(chan error, 1)
			go func() { submitted <- e.Submit(context.Background(), mustEvent(t, `{"image":"alpine"}`), "") }()
			select {
			case <-rec.started:
			case err := <-submitted:
				t.Fatalf("Submit returned (%v) before the disk answered", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the action did not start while the event was being written")
			}
			select {
			case err := <-submitted:
				t.Fatalf("Submit returned (%v) before the disk answered", err)
			default:
			}
			disk.synced <- tc.write
			select {
			case err := <-submitted:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Submit = %v, want %v", err, tc.wantErr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Submit did not return once the disk answered")
			}
			if s := e.Stats(); s.Accepted != tc.accepted || s.Rejected != tc.rej {
				t.Fatalf("accepted %d, rejected %d; want %d, %d", s.Accepted, s.Rejected, tc.accepted, tc.rej)
			}
		})
	}
}

// An event whose write fails leaves no de-duplication mark, even though its
// work started: its sender, answered 503, sends it again, and that event is
// not dropped as a duplicate.
func TestDeduplicationWaitsForTheWrite(t *testing.T) {
	const cfg = `
routes:
- name: once
  actions: [send]
  template: raw
  plugins:
    unique-message-props: ["image"]
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: send
  type: test
  enable: true
`
	st := openStore(t)
	disk := &slowDisk{synced: make(chan error, 2)}
	rec := &recorder{}
	e := load(t, cfg, rec, Options{Store: st, Inbox: disk, Durable: true, Workers: 1})
	e.Start()
	defer e.Stop(context.Background())

	disk.synced <- errors.New("disk full")
	if err := e.Submit(context.Background(), mustEvent(t, `{"image":"alpine"}`), ""); !errors.Is(err, ErrNotStored) {
		t.Fatalf("Submit on a failing disk = %v", err)
	}
	disk.synced <- nil
	again := mustEvent(t, `{"image":"alpine"}`)
	if err := e.Submit(context.Background(), again, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(context.Background()); err != nil { // the queue drained
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) != 1 || rec.calls[0].EventID != again.ID {
		var got []string
		for _, c := range rec.calls {
			got = append(got, c.EventID)
		}
		t.Fatalf("actions ran for events %v, want only for the one sent again (%s)", got, again.ID)
	}
}

package store

import (
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// GroupCommitInterval is the longest a MarkDone or Finish waits in memory
// before it is committed, when no Accept commits it first.
const GroupCommitInterval = 50 * time.Millisecond

// The records no answer waits for (an execution succeeded: MarkDone; an
// event's actions all finished: Finish) are not written one by one, each
// with its own fsync, but gathered in memory and written together. Those
// of an event in the inbox log (inboxlog.go) go with the log's next write
// (an Accept's, which is synced before its 2xx anyway); the others (a kept
// batch's, an event of an older version's bbolt inbox) wait here for the
// bbolt commit of a flush. Either way a flush writes them at most
// GroupCommitInterval after they came. A MarkDone of an event that is
// finished before the records are written is dropped: with the event gone
// from the inbox, no replay needs it.
//
// The cost is a window of at most GroupCommitInterval (plus one commit):
// after a crash inside it, an event whose Finish was not written is
// replayed, and its executions whose MarkDone was not written run again
// (postee_replayed_executions_total counts them); actions get each event at
// least once, as before, when a crash came between an action and its
// MarkDone. Accept is unchanged: an event is on disk before its 2xx.
type group struct {
	mu sync.Mutex
	// ops waiting to be written, in order; seq numbers them.
	ops []groupOp
	seq uint64
	// byEvent: the pending MarkDones of each event, by index into ops.
	byEvent map[string][]int
	// done: the pending MarkDones, for IsDone.
	done map[string]bool
	// lastTx and lastSeq: the transaction that last applied ops, and the
	// last op it applied, so that Accepts sharing a transaction apply
	// each op once.
	lastTx  *bolt.Tx
	lastSeq uint64
	// err is the last failed flush (the ops stay pending and are retried).
	err error
	// interval is GroupCommitInterval (tests change it); flushed, when
	// set, is signalled after each flush of the loop (tests).
	interval time.Duration
	flushed  chan struct{}

	kick     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

type groupOp struct {
	seq    uint64
	finish bool   // Finish(id) when true, else MarkDone(id, at)
	id     string // event id (Finish) or execution id (MarkDone)
	at     []byte
	drop   bool // a MarkDone made moot by its event's Finish
}

func (s *Store) startGroup() {
	s.g = &group{byEvent: map[string][]int{}, done: map[string]bool{}, kick: make(chan struct{}, 1), stop: make(chan struct{}),
		interval: GroupCommitInterval}
	s.g.wg.Add(1)
	go s.flushLoop()
}

// markDone queues a MarkDone of execution execID of event eventID ("" when
// unknown: never dropped).
func (s *Store) markDone(eventID, execID string, at time.Time) {
	g := s.g
	g.mu.Lock()
	g.seq++
	g.ops = append(g.ops, groupOp{seq: g.seq, id: execID, at: timeBytes(at)})
	if eventID != "" {
		g.byEvent[eventID] = append(g.byEvent[eventID], len(g.ops)-1)
	}
	g.done[execID] = true
	g.mu.Unlock()
	s.kickFlush()
}

// finish queues the removal of event id from the inbox and drops its
// pending MarkDones.
func (s *Store) finish(id string) {
	g := s.g
	g.mu.Lock()
	for _, i := range g.byEvent[id] {
		g.ops[i].drop = true
		delete(g.done, g.ops[i].id)
	}
	delete(g.byEvent, id)
	g.seq++
	g.ops = append(g.ops, groupOp{seq: g.seq, finish: true, id: id})
	g.mu.Unlock()
	s.kickFlush()
}

func (s *Store) kickFlush() {
	select {
	case s.g.kick <- struct{}{}:
	default:
	}
}

func (s *Store) pendingDone(execID string) bool {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return s.g.done[execID]
}

// apply writes the pending ops tx has not applied yet and returns the seq
// of the last one (0: none pending).
func (s *Store) apply(tx *bolt.Tx) (uint64, error) {
	g := s.g
	g.mu.Lock()
	from := uint64(0)
	if g.lastTx == tx {
		from = g.lastSeq
	}
	var ops []groupOp
	for _, op := range g.ops {
		if op.seq > from && !op.drop {
			ops = append(ops, op)
		}
	}
	last := g.seq
	if len(g.ops) == 0 {
		last = 0
	}
	g.lastTx, g.lastSeq = tx, last
	g.mu.Unlock()
	inbox, done := tx.Bucket(inboxBucket), tx.Bucket(execDoneBucket)
	for _, op := range ops {
		var err error
		if op.finish {
			err = inbox.Delete([]byte(op.id))
		} else {
			err = done.Put([]byte(op.id), op.at)
		}
		if err != nil {
			return 0, err
		}
	}
	return last, nil
}

// committed forgets the ops up to seq, written by a committed transaction.
func (s *Store) committed(seq uint64) {
	if seq == 0 {
		return
	}
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for n < len(g.ops) && g.ops[n].seq <= seq {
		n++
	}
	if n == 0 {
		return
	}
	rest := make([]groupOp, len(g.ops)-n, max(len(g.ops)-n, 64))
	copy(rest, g.ops[n:])
	g.ops = rest
	clear(g.byEvent)
	clear(g.done)
	for _, op := range g.ops {
		if !op.finish && !op.drop {
			g.done[op.id] = true
		}
	}
	// byEvent only drops MarkDones not yet written; those left pending
	// keep their records in done and are simply written.
	g.lastTx = nil
	g.err = nil
}

// Flush writes the pending MarkDones and Finishes now.
func (s *Store) Flush() error {
	if err := s.log.flush(); err != nil {
		return err
	}
	if !s.groupPending() {
		return nil
	}
	var last uint64
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		last, err = s.apply(tx)
		return err
	})
	if err != nil {
		s.g.mu.Lock()
		s.g.err = err
		s.g.lastTx = nil
		s.g.mu.Unlock()
		return err
	}
	s.committed(last)
	return nil
}

func (s *Store) pending() bool {
	return s.groupPending() || s.log.pending()
}

func (s *Store) groupPending() bool {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return len(s.g.ops) > 0
}

// flushLoop writes pending ops at most GroupCommitInterval after the first
// of them was queued.
func (s *Store) flushLoop() {
	defer s.g.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	armed := false
	for {
		select {
		case <-s.g.stop:
			t.Stop()
			return
		case <-s.g.kick:
			if !armed {
				t.Reset(s.g.interval)
				armed = true
			}
		case <-t.C:
			armed = false
			if s.pending() {
				_ = s.Flush() // kept pending on error, retried with the next
				if s.pending() {
					t.Reset(s.g.interval)
					armed = true
				}
			}
			if s.g.flushed != nil {
				s.g.flushed <- struct{}{}
			}
		}
	}
}

func (s *Store) stopGroup() error {
	s.g.stopOnce.Do(func() { close(s.g.stop) })
	s.g.wg.Wait()
	if s.pending() {
		return s.Flush()
	}
	return nil
}

package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	inboxBucket    = []byte("inbox")     // event id → Accepted, until every action of the event finished
	execDoneBucket = []byte("exec-done") // execution id → time it succeeded
)

// Accepted is an event written down before postee answered 2xx for it.
type Accepted struct {
	ID       string          `json:"id"`
	Received time.Time       `json:"received"`
	Route    string          `json:"route,omitempty"`
	Runner   string          `json:"runner,omitempty"`
	Origin   string          `json:"origin,omitempty"`
	Event    json.RawMessage `json:"event"`
}

// Accept writes an accepted event down, durably: appended to the inbox
// log (inboxlog.go) and synced before it returns; concurrent calls share
// one write and fdatasync.
func (s *Store) Accept(a Accepted) error {
	return s.log.accept(a)
}

// Begin appends an accepted event to the inbox log and returns at once;
// wait returns once it is on disk (nil), or with the error that kept it
// from being written (it is then not in the inbox). What the caller
// records about the event in the meantime (MarkDone, Finish) comes after
// it in the log.
func (s *Store) Begin(a Accepted) (wait func() error, err error) {
	b, err := s.log.begin(a)
	if err != nil {
		return nil, err
	}
	return b.wait, nil
}

// encodeAccepted lays a record out as length-prefixed fields followed by
// the event as is: JSON would re-scan and re-escape every event, which cost
// a tenth of postee's CPU under load.
func encodeAccepted(a Accepted) []byte {
	return appendAccepted(make([]byte, 0, 64+len(a.ID)+len(a.Route)+len(a.Runner)+len(a.Origin)+len(a.Event)), a)
}

func appendAccepted(buf []byte, a Accepted) []byte {
	buf = binary.AppendUvarint(buf, uint64(a.Received.UnixNano()))
	for _, f := range []string{a.ID, a.Route, a.Runner, a.Origin} {
		buf = AppendField(buf, f)
	}
	return append(buf, a.Event...)
}

func decodeAccepted(b []byte) (Accepted, error) {
	var a Accepted
	ns, n := binary.Uvarint(b)
	if n <= 0 {
		return a, errors.New("corrupt inbox record")
	}
	a.Received, b = time.Unix(0, int64(ns)), b[n:]
	fields := make([]string, 4)
	for i := range fields {
		var ok bool
		if fields[i], b, ok = ReadField(b); !ok {
			return a, errors.New("corrupt inbox record")
		}
	}
	a.ID, a.Route, a.Runner, a.Origin = fields[0], fields[1], fields[2], fields[3]
	a.Event = append(json.RawMessage(nil), b...)
	return a, nil
}

// AppendField appends s after its length (uvarint): the fields of the
// store's records, and of the runner's (core/cluster).
func AppendField(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// ReadField reads a field AppendField wrote at the start of b: the
// string and what follows it; false when b is cut short.
func ReadField(b []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return "", nil, false
	}
	return string(b[n : n+int(l)]), b[n+int(l):], true
}

// Finish forgets an event whose actions all finished. It is written with
// the next commit (group.go), at most GroupCommitInterval later; its
// event's MarkDones not yet written are dropped.
func (s *Store) Finish(id string) error {
	if !s.log.finish(id) {
		s.finish(id) // a kept batch, or an event of the bbolt inbox of an older version
		return nil
	}
	s.kickFlush()
	return nil
}

// Unfinished returns the accepted events not finished, oldest first (ids
// are time-ordered), then the kept batches not finished (IsBatch).
func (s *Store) Unfinished() ([]Accepted, error) {
	if s.pending() {
		if err := s.Flush(); err != nil {
			return nil, err
		}
	}
	out, err := s.log.unfinished()
	if err != nil {
		return nil, err
	}
	// The bbolt inbox holds the kept batches, and the events an older
	// version accepted.
	var batches []Accepted
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(inboxBucket).ForEach(func(_, v []byte) error {
			if a, err := decodeAccepted(v); err == nil {
				if IsBatch(a.ID) {
					batches = append(batches, a)
				} else {
					out = append(out, a)
				}
			}
			return nil
		})
	})
	slices.SortStableFunc(out, func(a, b Accepted) int { return strings.Compare(a.ID, b.ID) })
	return append(out, batches...), err
}

// MarkDone records that an execution succeeded, so a replay after a crash
// does not run it again. It is written with the next commit (group.go), at
// most GroupCommitInterval later.
func (s *Store) MarkDone(execID string, at time.Time) error {
	s.markDone("", execID, at)
	return nil
}

// MarkDoneOf is MarkDone for an execution of event eventID: when the
// event's Finish comes before the record is written, the record is not
// written at all.
func (s *Store) MarkDoneOf(eventID, execID string, at time.Time) error {
	if eventID != "" && s.log.markDone(eventID, execID, timeBytes(at)) {
		s.kickFlush()
		return nil
	}
	s.markDone(eventID, execID, at)
	return nil
}

// IsDone reports whether an execution succeeded before.
func (s *Store) IsDone(execID string) bool {
	if s.log.isDone(execID) || s.pendingDone(execID) {
		return true
	}
	done := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		done = tx.Bucket(execDoneBucket).Get([]byte(execID)) != nil
		return nil
	})
	return done
}

// PruneDone drops execution records older than before (no replay can need
// them: their events finished or were replayed long ago).
func (s *Store) PruneDone(before time.Time) (int, error) {
	if s.pending() {
		if err := s.Flush(); err != nil {
			return 0, err
		}
	}
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(execDoneBucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if bytesTime(v).Before(before) {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

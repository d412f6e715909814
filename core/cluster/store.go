package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
)

var (
	// doneByEventBucket holds the executions a runner finished: the time
	// of the execution's event (uint64 of milliseconds, big-endian, from
	// the event id: see doneKey), execution id → done record. The records
	// of the executions finishing together land on the last pages of the
	// tree instead of one page each (the execution id is a hash), and the
	// oldest come first (forget).
	doneByEventBucket = []byte("done-by-event")
	// doneBucket holds the done records of earlier versions, by execution
	// id alone: still read while it has any.
	doneBucket   = []byte("done")
	outboxBucket = []byte("outbox") // sequence → outgoing report
	// sentBucket keeps the event reports sent to a controller whose
	// server syncs its files periodically, to send them once more (see
	// Runner.resendSent): sequence → uvarint(sent, unix nanoseconds),
	// outgoing report as in outboxBucket.
	sentBucket = []byte("sent")
	metaBucket = []byte("meta") // the runner's own settings
	msgKeyName = []byte("msg-id-key")
)

// runnerStore is a runner's durable state: the executions it finished (so
// a redelivered one is never run twice) and the reports not yet accepted by
// the controller (so none is lost while the controller is away).
type runnerStore struct {
	db *bolt.DB
	// msgKey derives the message ids of the runner's reports: JetStream
	// drops a message whose id it saw within its window in the whole
	// stream, so ids another runner could compute would let it suppress
	// this runner's reports.
	msgKey []byte
	// legacy says doneBucket has records (of an earlier version).
	legacy atomic.Bool
}

type outgoing struct {
	Subject string `json:"subject"`
	MsgID   string `json:"msg_id"`
	Data    []byte `json:"data"`
}

// doneRecord is how done records were written before they were binary
// (recordBinary); still read.
type doneRecord struct {
	At      time.Time        `json:"at"`
	Outcome record.Execution `json:"outcome"`
}

// recordBinary starts the records written now, which JSON never starts
// with:
//
//	done:   recordBinary, uvarint(finished, unix nanoseconds), the outcome report's data
//	outbox: recordBinary, uvarint(len(subject)), subject, uvarint(len(msg id)), msg id, data
//
// JSON (with the data in base64) cost the runner a tenth of its CPU under
// load.
const recordBinary = 0x01

func encodeDone(at time.Time, outcome []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(outcome))
	b = append(b, recordBinary)
	b = binary.AppendUvarint(b, uint64(at.UnixNano()))
	return append(b, outcome...)
}

// decodeDone returns when a done record was written and the outcome
// report's data (nil when unreadable).
func decodeDone(v []byte) (time.Time, []byte, bool) {
	if len(v) > 0 && v[0] == recordBinary {
		ns, n := binary.Uvarint(v[1:])
		if n <= 0 {
			return time.Time{}, nil, false
		}
		return time.Unix(0, int64(ns)), v[1+n:], true
	}
	var rec doneRecord
	if json.Unmarshal(v, &rec) != nil {
		return time.Time{}, nil, false
	}
	data, err := encodeOutcome(rec.Outcome)
	return rec.At, data, err == nil
}

func encodeOutgoing(r outgoing) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(r.Subject)+len(r.MsgID)+len(r.Data))
	b = append(b, recordBinary)
	b = store.AppendField(store.AppendField(b, r.Subject), r.MsgID)
	return append(b, r.Data...)
}

func decodeOutgoing(v []byte) (outgoing, bool) {
	var r outgoing
	if len(v) == 0 || v[0] != recordBinary {
		return r, json.Unmarshal(v, &r) == nil
	}
	v = v[1:]
	for _, f := range []*string{&r.Subject, &r.MsgID} {
		var ok bool
		if *f, v, ok = store.ReadField(v); !ok {
			return outgoing{}, false
		}
	}
	r.Data = append([]byte(nil), v...)
	return r, true
}

// runnerCommitDelay is how long the first of the executions finishing
// together waits for others to share its bbolt commit (two fdatasyncs and
// the pages written). Each execution's record and outcome report are on disk
// before its work is acknowledged, so every commit is waited on; under load
// a longer window means fewer, larger commits: at 2 ms the runner spent a
// quarter of its CPU in them, at 8 ms its CPU per execution is about a tenth
// lower (docs/performance.md), and an outcome is reported at most 8 ms later.
const runnerCommitDelay = 8 * time.Millisecond

func openRunnerStore(path string) (*runnerStore, error) {
	db, err := store.OpenDB(path, doneByEventBucket, doneBucket, outboxBucket, metaBucket, sentBucket)
	if err != nil {
		return nil, fmt.Errorf("runner %w", err)
	}
	s := &runnerStore{db: db}
	db.MaxBatchDelay = runnerCommitDelay
	err = db.Update(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(doneBucket).Cursor().First(); k != nil {
			s.legacy.Store(true)
		}
		b := tx.Bucket(metaBucket)
		if k := b.Get(msgKeyName); len(k) == 32 {
			s.msgKey = append([]byte(nil), k...)
			return nil
		}
		s.msgKey = make([]byte, 32)
		if _, err := rand.Read(s.msgKey); err != nil {
			return err
		}
		return b.Put(msgKeyName, s.msgKey)
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("runner store %s: %w", path, err)
	}
	return s, nil
}

// msgID is the message id of a report of kind about id: stable for this
// runner (a report sent again is dropped as a duplicate), unguessable for
// others.
func (s *runnerStore) msgID(runner, kind, id string) string {
	m := hmac.New(sha256.New, s.msgKey)
	m.Write([]byte(kind + "\x00" + id))
	return kind + ":" + runner + ":" + hex.EncodeToString(m.Sum(nil)[:16])
}

// doneKey is the key of the done record of execution execID of event
// eventID: the event's time, as event.NewID wrote it in the id's first 12
// hex digits (milliseconds), then the execution id. An event id of another
// form gives time 0: its records come first.
func doneKey(eventID, execID string) []byte {
	k := make([]byte, 8, 8+len(execID))
	if len(eventID) == 32 {
		if _, err := hex.Decode(k[2:], []byte(eventID[:12])); err != nil {
			clear(k)
		}
	}
	return append(k, execID...)
}

// done returns the outcome report's data of execution execID of event
// eventID when it already finished here.
func (s *runnerStore) done(eventID, execID string) ([]byte, bool) {
	var data []byte
	found := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(doneByEventBucket).Get(doneKey(eventID, execID))
		if v == nil && s.legacy.Load() {
			v = tx.Bucket(doneBucket).Get([]byte(execID))
		}
		if v != nil {
			var d []byte
			if _, d, found = decodeDone(v); found {
				data = append([]byte(nil), d...)
			}
		}
		return nil
	})
	return data, found
}

// finish records execution execID of event eventID as done and queues its
// outcome report, in one transaction; the record keeps the report's data,
// to report it again if the work is redelivered.
func (s *runnerStore) finish(eventID, execID string, report outgoing) error {
	rec := encodeDone(time.Now(), report.Data)
	key := doneKey(eventID, execID)
	// Batch coalesces the concurrent executions' writes into one
	// transaction and one fsync.
	return s.db.Batch(func(tx *bolt.Tx) error {
		if err := tx.Bucket(doneByEventBucket).Put(key, rec); err != nil {
			return err
		}
		return putOutgoing(tx, report)
	})
}

// enqueue queues reports.
func (s *runnerStore) enqueue(reports ...outgoing) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		for _, r := range reports {
			if err := putOutgoing(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
}

func putOutgoing(tx *bolt.Tx, r outgoing) error {
	b := tx.Bucket(outboxBucket)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return b.Put(k[:], encodeOutgoing(r))
}

// oldest returns up to n of the oldest queued reports, with their keys.
func (s *runnerStore) oldest(n int) (keys [][]byte, reps []outgoing) {
	_ = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(outboxBucket).Cursor()
		for k, v := c.First(); k != nil && len(keys) < n; k, v = c.Next() {
			r, ok := decodeOutgoing(v)
			if !ok {
				r = outgoing{} // unreadable: sent as nothing, then dropped
			}
			keys = append(keys, append([]byte(nil), k...))
			reps = append(reps, r)
		}
		return nil
	})
	return keys, reps
}

// remove drops sent reports; those keep says are kept in sentBucket, sent
// at. Batch shares the transaction (and its fsync) with the executions
// finishing meanwhile; a removal lost to a crash only sends a report
// again, which the controller drops by its message id.
func (s *runnerStore) remove(keys [][]byte, reps []outgoing, keep func(outgoing) bool, at time.Time) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		b, sent := tx.Bucket(outboxBucket), tx.Bucket(sentBucket)
		for i, k := range keys {
			if keep != nil && keep(reps[i]) {
				v := binary.AppendUvarint(nil, uint64(at.UnixNano()))
				if err := sent.Put(k, append(v, encodeOutgoing(reps[i])...)); err != nil {
					return err
				}
			}
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// sentBefore returns up to n of the reports kept in sentBucket that were
// sent before t, with their keys.
func (s *runnerStore) sentBefore(t time.Time, n int) (keys [][]byte, reps []outgoing) {
	_ = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(sentBucket).Cursor()
		for k, v := c.First(); k != nil && len(keys) < n; k, v = c.Next() {
			at, l := binary.Uvarint(v)
			if l <= 0 {
				// Unreadable: dropped with the others.
				keys, reps = append(keys, append([]byte(nil), k...)), append(reps, outgoing{})
				continue
			}
			if int64(at) >= t.UnixNano() {
				break // kept in the order sent
			}
			r, ok := decodeOutgoing(v[l:])
			if !ok {
				r = outgoing{}
			}
			keys, reps = append(keys, append([]byte(nil), k...)), append(reps, r)
		}
		return nil
	})
	return keys, reps
}

// dropSent forgets reports kept in sentBucket.
func (s *runnerStore) dropSent(keys [][]byte) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(sentBucket)
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// pending counts queued reports.
func (s *runnerStore) pending() int {
	n := 0
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(outboxBucket).Stats().KeyN; return nil })
	return n
}

// forget drops done records older than the retention: redeliveries cannot
// come later than that. Records are kept in the order of their events'
// times, and an execution finishes after its event arrived, so the scan
// stops at the first event newer than the cut (a controller's clock ahead
// of the runner's only delays a deletion).
func (s *runnerStore) forget(olderThan time.Time) {
	_ = s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(doneByEventBucket).Cursor()
		cut := uint64(olderThan.UnixMilli())
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) >= 8 && binary.BigEndian.Uint64(k) >= cut {
				break
			}
			if at, _, ok := decodeDone(v); !ok || at.Before(olderThan) {
				_ = c.Delete()
			}
		}
		if !s.legacy.Load() {
			return nil
		}
		c = tx.Bucket(doneBucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if at, _, ok := decodeDone(v); !ok || at.Before(olderThan) {
				_ = c.Delete()
			}
		}
		if k, _ := c.First(); k == nil {
			s.legacy.Store(false)
		}
		return nil
	})
}

func (s *runnerStore) close() error { return s.db.Close() }

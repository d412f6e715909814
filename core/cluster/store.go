package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
)

var (
	doneBucket   = []byte("done")   // execution id → outcome (JSON)
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
	for _, f := range []string{r.Subject, r.MsgID} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return append(b, r.Data...)
}

func decodeOutgoing(v []byte) (outgoing, bool) {
	var r outgoing
	if len(v) == 0 || v[0] != recordBinary {
		return r, json.Unmarshal(v, &r) == nil
	}
	v = v[1:]
	var fields [2]string
	for i := range fields {
		l, n := binary.Uvarint(v)
		if n <= 0 || uint64(len(v)-n) < l {
			return outgoing{}, false
		}
		fields[i], v = string(v[n:n+int(l)]), v[n+int(l):]
	}
	r.Subject, r.MsgID, r.Data = fields[0], fields[1], append([]byte(nil), v...)
	return r, true
}

func openRunnerStore(path string) (*runnerStore, error) {
	db, err := store.OpenDB(path, doneBucket, outboxBucket, metaBucket, sentBucket)
	if err != nil {
		return nil, fmt.Errorf("runner %w", err)
	}
	s := &runnerStore{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
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

// done returns the outcome report's data of an execution already finished
// here.
func (s *runnerStore) done(execID string) ([]byte, bool) {
	var data []byte
	found := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(doneBucket).Get([]byte(execID)); v != nil {
			var d []byte
			if _, d, found = decodeDone(v); found {
				data = append([]byte(nil), d...)
			}
		}
		return nil
	})
	return data, found
}

// finish records execution execID as done and queues its outcome report,
// in one transaction; the record keeps the report's data, to report it
// again if the work is redelivered.
func (s *runnerStore) finish(execID string, report outgoing) error {
	rec := encodeDone(time.Now(), report.Data)
	// Batch coalesces the concurrent executions' writes into one
	// transaction and one fsync.
	return s.db.Batch(func(tx *bolt.Tx) error {
		if err := tx.Bucket(doneBucket).Put([]byte(execID), rec); err != nil {
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
// come later than that.
func (s *runnerStore) forget(olderThan time.Time) {
	_ = s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(doneBucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if at, _, ok := decodeDone(v); !ok || at.Before(olderThan) {
				_ = c.Delete()
			}
		}
		return nil
	})
}

func (s *runnerStore) close() error { return s.db.Close() }

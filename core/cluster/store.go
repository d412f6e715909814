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
	metaBucket   = []byte("meta")   // the runner's own settings
	msgKeyName   = []byte("msg-id-key")
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

type doneRecord struct {
	At      time.Time        `json:"at"`
	Outcome record.Execution `json:"outcome"`
}

func openRunnerStore(path string) (*runnerStore, error) {
	db, err := store.OpenDB(path, doneBucket, outboxBucket, metaBucket)
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

// done returns the outcome of an execution already finished here.
func (s *runnerStore) done(execID string) (record.Execution, bool) {
	var rec doneRecord
	found := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(doneBucket).Get([]byte(execID)); v != nil {
			found = json.Unmarshal(v, &rec) == nil
		}
		return nil
	})
	return rec.Outcome, found
}

// finish records an execution as done and queues its outcome report, in
// one transaction.
func (s *runnerStore) finish(x record.Execution, report outgoing) error {
	rec, err := json.Marshal(doneRecord{At: time.Now(), Outcome: x})
	if err != nil {
		return err
	}
	// Batch coalesces the concurrent executions' writes into one
	// transaction and one fsync.
	return s.db.Batch(func(tx *bolt.Tx) error {
		if err := tx.Bucket(doneBucket).Put([]byte(x.ID), rec); err != nil {
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
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return b.Put(k[:], data)
}

// oldest returns up to n of the oldest queued reports, with their keys.
func (s *runnerStore) oldest(n int) (keys [][]byte, reps []outgoing) {
	_ = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(outboxBucket).Cursor()
		for k, v := c.First(); k != nil && len(keys) < n; k, v = c.Next() {
			var r outgoing
			if json.Unmarshal(v, &r) != nil {
				r = outgoing{} // unreadable: sent as nothing, then dropped
			}
			keys = append(keys, append([]byte(nil), k...))
			reps = append(reps, r)
		}
		return nil
	})
	return keys, reps
}

// remove drops sent reports. Batch shares the transaction (and its fsync)
// with the executions finishing meanwhile; a removal lost to a crash only
// sends a report again, which the controller drops by its message id.
func (s *runnerStore) remove(keys [][]byte) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(outboxBucket)
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
			var rec doneRecord
			if json.Unmarshal(v, &rec) != nil || rec.At.Before(olderThan) {
				_ = c.Delete()
			}
		}
		return nil
	})
}

func (s *runnerStore) close() error { return s.db.Close() }

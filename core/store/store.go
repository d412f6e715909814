// Package store is postee's embedded state, in one bbolt file at PATH_TO_DB:
// the de-duplication keys of routes' unique-message-props and the pending
// messages of routes' aggregation. Both survive restarts; keys are scoped to
// the route, so two routes never suppress or mix each other's messages.
// The accepted events not finished are in an append-only log beside it
// (inboxlog.go, PATH_TO_DB + LogSuffix).
//
// A durable engine takes a batch out of an aggregation with AggregateKeep
// or DueKeep, which write the batch to the inbox (inbox.go) as a record of
// its own (BatchRecord) in the transaction that removes it from the
// aggregation: from the moment it is taken until Finish(batch.ID), a crash
// leaves it in the inbox, and Unfinished hands it to the replay.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/postee-dev/postee/core/record"
)

var (
	uniqueBucket = []byte("unique")      // route → (key → expiry, unix nanos; 0: never)
	aggrBucket   = []byte("aggregation") // route → (seq → pending item); "first" → first arrival
)

// Store is the embedded store.
type Store struct {
	db   *bolt.DB
	path string
	dead deadState
	g    *group    // MarkDone and Finish, committed in groups (group.go)
	log  *inboxLog // the accepted events (inboxlog.go)
}

// Open opens (or creates) the store file.
func Open(path string) (*Store, error) {
	db, err := OpenDB(path, uniqueBucket, aggrBucket, deadBucket, deadTimeBucket, inboxBucket, execDoneBucket)
	if err != nil {
		return nil, err
	}
	log, err := openInboxLog(path + LogSuffix)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{db: db, path: path, log: log}
	s.startGroup()
	return s, nil
}

// LogSuffix names the inbox log's directory: the store file's path
// followed by it.
const LogSuffix = ".inbox"

// LogDamage describes the records of the inbox log that could not be read
// back when the store was opened (nil: none); the events after such a
// record in its file were not replayed.
func (s *Store) LogDamage() []string { return s.log.damage }

// OpenDB opens (or creates) a bbolt file, its directory and buckets; the
// runner's own store uses it too. Concurrent Batch writes share one
// transaction and fsync, after a short delay that keeps latency low.
func OpenDB(path string, buckets ...[]byte) (*bolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, &InUseError{Path: path, PID: lockHolder(path)}
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return db, nil
}

// Close writes the pending MarkDones and Finishes and closes the file.
func (s *Store) Close() error {
	err := s.stopGroup()
	if cerr := s.log.close(); err == nil {
		err = cerr
	}
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// Seen reports whether key was already recorded for route and has not
// expired; if not, it records it until now+ttl (ttl 0: no expiry).
func (s *Store) Seen(route, key string, ttl time.Duration, now time.Time) (bool, error) {
	seen := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(uniqueBucket).CreateBucketIfNotExists([]byte(route))
		if err != nil {
			return err
		}
		if v := b.Get([]byte(key)); len(v) == 8 {
			exp := int64(binary.BigEndian.Uint64(v))
			if exp == 0 || now.UnixNano() < exp {
				seen = true
				return nil
			}
		}
		var exp int64
		if ttl > 0 {
			exp = now.Add(ttl).UnixNano()
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(exp))
		return b.Put([]byte(key), v[:])
	})
	return seen, err
}

// Item is one message waiting in an aggregation.
type Item struct {
	EventID string         `json:"event_id"`
	Message record.Message `json:"message"`
}

// Batch is a flushed aggregation.
type Batch struct {
	Route string
	Items []Item
	// First is when the first item arrived.
	First time.Time
	// ID is the batch's id (BatchID) when it was kept (AggregateKeep,
	// DueKeep): its record waits in the inbox until Finish(ID).
	ID string
}

var firstKey = []byte("first")

// BatchPrefix begins the id of every batch (BatchID); an event's id never
// does (event ids are hexadecimal).
const BatchPrefix = "aggr-"

// BatchID is the id of route's batch of the events eventIDs, in order: the
// same batch always gets the same id, and so do its executions (a batch
// sent again after a crash skips those that had succeeded).
func BatchID(route string, eventIDs []string) string {
	return BatchPrefix + record.ExecutionID(strings.Join(eventIDs, ","), route, "")
}

// IsBatch reports whether an inbox record (of id) is a kept batch
// (BatchRecord) rather than an accepted event.
func IsBatch(id string) bool { return strings.HasPrefix(id, BatchPrefix) }

// batchRecord is a kept batch as its inbox record holds it.
type batchRecord struct {
	Route string `json:"route"`
	First int64  `json:"first"` // unix nanos
	Items []Item `json:"items"`
}

// BatchRecord is the inbox record of a batch taken at taken and not sent
// yet: an Accepted whose id is the batch's (IsBatch) and whose event is
// the batch. An inbox keeps it until Finish(b.ID), and replays it like an
// event.
func BatchRecord(b *Batch, taken time.Time) Accepted {
	data, _ := json.Marshal(batchRecord{Route: b.Route, First: b.First.UnixNano(), Items: b.Items})
	return Accepted{ID: b.ID, Received: taken, Route: b.Route, Event: data}
}

// DecodeBatch reads a BatchRecord back.
func DecodeBatch(a Accepted) (*Batch, error) {
	var r batchRecord
	if err := json.Unmarshal(a.Event, &r); err != nil {
		return nil, fmt.Errorf("aggregation %s: unreadable record: %w", a.ID, err)
	}
	if r.Route == "" || len(r.Items) == 0 {
		return nil, fmt.Errorf("aggregation %s: record without route or messages", a.ID)
	}
	return &Batch{Route: r.Route, Items: r.Items, First: time.Unix(0, r.First), ID: a.ID}, nil
}

// Aggregate adds item to route's pending aggregation. When the count
// reaches n (n > 0), the batch is removed and returned.
func (s *Store) Aggregate(route string, item Item, n int, now time.Time) (*Batch, error) {
	return s.aggregate(route, item, n, now, false, false)
}

// AggregateKeep is Aggregate for a durable engine: a full batch is taken
// and written to the inbox as a record of its own (BatchRecord) in one
// transaction, so that a crash before the batch is sent loses nothing
// (Unfinished returns it). The caller sends it and then calls
// Finish(batch.ID). Each item added is recorded with the finished
// executions (aggregatedKey; dropped by PruneDone with them), in the same
// transaction: with replayed (the item's event is processed again after a
// restart), an item of that event added before, whether still pending, in
// a batch being sent or in one sent already, is not added a second time.
func (s *Store) AggregateKeep(route string, item Item, n int, now time.Time, replayed bool) (*Batch, error) {
	return s.aggregate(route, item, n, now, true, replayed)
}

func (s *Store) aggregate(route string, item Item, n int, now time.Time, keep, replayed bool) (*Batch, error) {
	data, err := json.Marshal(item)
	if err != nil {
		return nil, err
	}
	var out *Batch
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(aggrBucket).CreateBucketIfNotExists([]byte(route))
		if err != nil {
			return err
		}
		if keep && item.EventID != "" {
			done, mark := tx.Bucket(execDoneBucket), aggregatedKey(route, item.EventID)
			if replayed && done.Get(mark) != nil {
				return nil
			}
			if err := done.Put(mark, timeBytes(now)); err != nil {
				return err
			}
		}
		if b.Get(firstKey) == nil {
			if err := b.Put(firstKey, timeBytes(now)); err != nil {
				return err
			}
		}
		seq, _ := b.NextSequence()
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], seq)
		if err := b.Put(k[:], data); err != nil {
			return err
		}
		if n > 0 && countItems(b) >= n {
			out, err = takeBatch(tx, route, keep, now)
		}
		return err
	})
	return out, err
}

// aggregatedKey is the record, among the finished executions, that event
// eventID's message was added to route's aggregation.
func aggregatedKey(route, eventID string) []byte {
	return []byte("aggregated-" + record.ExecutionID(eventID, route, ""))
}

// Due removes and returns the aggregations whose first item is older than
// timeout for each route in timeouts.
func (s *Store) Due(timeouts map[string]time.Duration, now time.Time) ([]*Batch, error) {
	return s.due(timeouts, now, false)
}

// DueKeep is Due for a durable engine: each batch is taken and written to
// the inbox in one transaction, as AggregateKeep does.
func (s *Store) DueKeep(timeouts map[string]time.Duration, now time.Time) ([]*Batch, error) {
	return s.due(timeouts, now, true)
}

func (s *Store) due(timeouts map[string]time.Duration, now time.Time, keep bool) ([]*Batch, error) {
	var out []*Batch
	err := s.db.Update(func(tx *bolt.Tx) error {
		for route, timeout := range timeouts {
			b := tx.Bucket(aggrBucket).Bucket([]byte(route))
			if b == nil || timeout <= 0 {
				continue
			}
			first := b.Get(firstKey)
			if first == nil || now.Sub(bytesTime(first)) < timeout {
				continue
			}
			batch, err := takeBatch(tx, route, keep, now)
			if err != nil {
				return err
			}
			if len(batch.Items) > 0 {
				out = append(out, batch)
			}
		}
		return nil
	})
	return out, err
}

// countItems counts the pending items (every key but "first").
func countItems(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if string(k) != string(firstKey) {
			n++
		}
	}
	return n
}

// takeBatch removes route's pending aggregation and returns it; with keep,
// a batch with items is written to the inbox (BatchRecord, taken at now)
// in the same transaction.
func takeBatch(tx *bolt.Tx, route string, keep bool, now time.Time) (*Batch, error) {
	parent := tx.Bucket(aggrBucket)
	b := parent.Bucket([]byte(route))
	batch := &Batch{Route: route}
	err := b.ForEach(func(k, v []byte) error {
		if string(k) == string(firstKey) {
			batch.First = bytesTime(v)
			return nil
		}
		var it Item
		if err := json.Unmarshal(v, &it); err == nil {
			batch.Items = append(batch.Items, it)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if keep && len(batch.Items) > 0 {
		ids := make([]string, len(batch.Items))
		for i, it := range batch.Items {
			ids[i] = it.EventID
		}
		batch.ID = BatchID(route, ids)
		if err := tx.Bucket(inboxBucket).Put([]byte(batch.ID), encodeAccepted(BatchRecord(batch, now))); err != nil {
			return nil, err
		}
	}
	return batch, parent.DeleteBucket([]byte(route))
}

func timeBytes(t time.Time) []byte {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(t.UnixNano()))
	return v[:]
}

func bytesTime(b []byte) time.Time {
	if len(b) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)))
}

// Prune deletes expired de-duplication keys and returns how many.
func (s *Store) Prune(now time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(uniqueBucket).ForEachBucket(func(route []byte) error {
			c := tx.Bucket(uniqueBucket).Bucket(route).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if len(v) == 8 {
					exp := int64(binary.BigEndian.Uint64(v))
					if exp != 0 && exp <= now.UnixNano() {
						if err := c.Delete(); err != nil {
							return err
						}
						n++
					}
				}
			}
			return nil
		})
	})
	return n, err
}

// Shrink deletes de-duplication keys, a thousand at a time, until the live
// data is under maxBytes (max-db-size). Pending aggregations are never
// dropped. It returns how many keys it deleted.
func (s *Store) Shrink(maxBytes int64) (int, error) {
	deleted := 0
	for {
		size, err := s.Size()
		if err != nil || maxBytes <= 0 || size <= maxBytes {
			return deleted, err
		}
		pass := 0
		err = s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(uniqueBucket).ForEachBucket(func(route []byte) error {
				c := tx.Bucket(uniqueBucket).Bucket(route).Cursor()
				for k, _ := c.First(); k != nil && pass < 1000; k, _ = c.Next() {
					if err := c.Delete(); err != nil {
						return err
					}
					pass++
				}
				return nil
			})
		})
		deleted += pass
		if err != nil || pass == 0 {
			return deleted, err
		}
	}
}

// Size is the space the data takes inside the file (bbolt reuses freed
// pages rather than shrinking the file).
func (s *Store) Size() (int64, error) {
	var size int64
	err := s.db.View(func(tx *bolt.Tx) error {
		st := s.db.Stats()
		size = tx.Size() - int64(st.FreePageN+st.PendingPageN)*int64(s.db.Info().PageSize)
		return nil
	})
	return size, err
}

package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"sync"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/postee-dev/postee/core/record"
)

var (
	deadBucket = []byte("dead-letters")
	// deadTimeBucket indexes dead letters by time: at (8 bytes, big
	// endian nanoseconds) + execution id → nothing. Oldest first.
	deadTimeBucket = []byte("dead-letters-by-time")
)

// Default bounds of the dead letters: past either, the oldest are dropped
// (and counted).
const (
	DefaultMaxDeadLetters     = 10000
	DefaultMaxDeadLetterBytes = 256 << 20
	// MaxDeadLetterOutput bounds a dead letter's output and error.
	MaxDeadLetterOutput = 64 << 10
)

// DeadLetter is an execution that failed for good: its last attempt, or a
// failure a retry cannot fix. It keeps what is needed to replay it.
type DeadLetter struct {
	ExecutionID string          `json:"execution_id"`
	EventID     string          `json:"event_id"`
	Route       string          `json:"route"`
	Action      string          `json:"action"`
	Attempts    int             `json:"attempts"`
	Error       string          `json:"error"`
	Output      string          `json:"output,omitempty"`
	At          time.Time       `json:"at"`
	Event       json.RawMessage `json:"event"`
	Message     record.Message  `json:"message"`
}

// ErrNotFound: no such dead letter.
var ErrNotFound = errors.New("no such dead letter")

// deadState counts the dead letters, their bytes and those dropped.
type deadState struct {
	mu       sync.Mutex
	loaded   bool
	count    int
	bytes    int64
	dropped  int64
	maxCount int
	maxBytes int64
}

// SetDeadLetterLimits bounds the dead letters by count and bytes (0: the
// default); past either, the oldest are dropped.
func (s *Store) SetDeadLetterLimits(count int, bytes int64) {
	s.dead.mu.Lock()
	defer s.dead.mu.Unlock()
	s.dead.maxCount, s.dead.maxBytes = count, bytes
}

// DeadLettersDropped is how many dead letters were dropped, oldest first,
// to keep within the bounds since the store was opened.
func (s *Store) DeadLettersDropped() int64 {
	s.dead.mu.Lock()
	defer s.dead.mu.Unlock()
	return s.dead.dropped
}

func timeKey(at time.Time, id string) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
	return append(k, id...)
}

// loadDeadLocked counts what is stored and (re)builds the time index when
// it does not match (a store written before it existed).
func (s *Store) loadDeadLocked(tx *bolt.Tx) error {
	if s.dead.loaded {
		return nil
	}
	b, idx := tx.Bucket(deadBucket), tx.Bucket(deadTimeBucket)
	count, bytes := 0, int64(0)
	_ = b.ForEach(func(_, v []byte) error {
		count++
		bytes += int64(len(v))
		return nil
	})
	if idx.Stats().KeyN != count {
		if err := tx.DeleteBucket(deadTimeBucket); err != nil {
			return err
		}
		idx, err := tx.CreateBucket(deadTimeBucket)
		if err != nil {
			return err
		}
		err = b.ForEach(func(k, v []byte) error {
			var d struct {
				At time.Time `json:"at"`
			}
			_ = json.Unmarshal(v, &d)
			return idx.Put(timeKey(d.At, string(k)), nil)
		})
		if err != nil {
			return err
		}
	}
	s.dead.count, s.dead.bytes, s.dead.loaded = count, bytes, true
	return nil
}

func clipText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "… (clipped)"
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// PutDeadLetter records d (replacing an earlier one of the same
// execution), dropping the oldest dead letters past the bounds.
func (s *Store) PutDeadLetter(d DeadLetter) error {
	d.Output = clipText(d.Output, MaxDeadLetterOutput)
	d.Error = clipText(d.Error, MaxDeadLetterOutput)
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	s.dead.mu.Lock()
	defer s.dead.mu.Unlock()
	maxCount, maxBytes := s.dead.maxCount, s.dead.maxBytes
	if maxCount <= 0 {
		maxCount = DefaultMaxDeadLetters
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxDeadLetterBytes
	}
	var count, bytes, dropped int64
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := s.loadDeadLocked(tx); err != nil {
			return err
		}
		count, bytes = int64(s.dead.count), s.dead.bytes
		b, idx := tx.Bucket(deadBucket), tx.Bucket(deadTimeBucket)
		if err := removeDead(b, idx, []byte(d.ExecutionID), &count, &bytes); err != nil {
			return err
		}
		if err := b.Put([]byte(d.ExecutionID), data); err != nil {
			return err
		}
		if err := idx.Put(timeKey(d.At, d.ExecutionID), nil); err != nil {
			return err
		}
		count, bytes = count+1, bytes+int64(len(data))
		for count > int64(maxCount) || bytes > maxBytes {
			k, _ := idx.Cursor().First()
			if k == nil || string(k[8:]) == d.ExecutionID {
				break // never drop the one just written
			}
			if err := removeDead(b, idx, k[8:], &count, &bytes); err != nil {
				return err
			}
			dropped++
		}
		return nil
	})
	if err != nil {
		s.dead.loaded = false // recount on the next write
		return err
	}
	s.dead.count, s.dead.bytes = int(count), bytes
	s.dead.dropped += dropped
	return nil
}

// removeDead deletes the dead letter id (if any) and its index entry.
func removeDead(b, idx *bolt.Bucket, id []byte, count, bytes *int64) error {
	old := b.Get(id)
	if old == nil {
		return nil
	}
	var prev struct {
		At time.Time `json:"at"`
	}
	_ = json.Unmarshal(old, &prev)
	*count--
	*bytes -= int64(len(old))
	if err := idx.Delete(timeKey(prev.At, string(id))); err != nil {
		return err
	}
	return b.Delete(id)
}

// DeadLetters lists the dead letters, oldest first.
func (s *Store) DeadLetters() ([]DeadLetter, error) {
	out, _, err := s.DeadLettersPage(0, 0)
	return out, err
}

// DeadLettersPage lists up to limit dead letters (0: all) after skipping
// offset, oldest first, and how many there are in all.
func (s *Store) DeadLettersPage(offset, limit int) ([]DeadLetter, int, error) {
	s.dead.mu.Lock()
	defer s.dead.mu.Unlock()
	var out []DeadLetter
	total := 0
	run := s.db.Update // the first time, the index may need building
	if s.dead.loaded {
		run = s.db.View
	}
	err := run(func(tx *bolt.Tx) error {
		if err := s.loadDeadLocked(tx); err != nil {
			return err
		}
		b, idx := tx.Bucket(deadBucket), tx.Bucket(deadTimeBucket)
		total = s.dead.count
		c := idx.Cursor()
		i := 0
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if i++; i <= offset {
				continue
			}
			if limit > 0 && len(out) >= limit {
				break
			}
			var d DeadLetter
			if v := b.Get(k[8:]); v != nil && json.Unmarshal(v, &d) == nil {
				out = append(out, d)
			}
		}
		return nil
	})
	if err != nil {
		s.dead.loaded = false
	}
	return out, total, err
}

// GetDeadLetter returns one dead letter.
func (s *Store) GetDeadLetter(id string) (DeadLetter, error) {
	var d DeadLetter
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(deadBucket)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &d)
	})
	return d, err
}

// DeleteDeadLetter removes one (after a successful replay).
func (s *Store) DeleteDeadLetter(id string) error {
	s.dead.mu.Lock()
	defer s.dead.mu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := s.loadDeadLocked(tx); err != nil {
			return err
		}
		b, idx := tx.Bucket(deadBucket), tx.Bucket(deadTimeBucket)
		if b.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		count, bytes := int64(s.dead.count), s.dead.bytes
		if err := removeDead(b, idx, []byte(id), &count, &bytes); err != nil {
			return err
		}
		s.dead.count, s.dead.bytes = int(count), bytes
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.dead.loaded = false
	}
	return err
}

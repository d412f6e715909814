package store

import (
	"encoding/json"
	"errors"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postee-dev/postee/sdk"
)

var deadBucket = []byte("dead-letters")

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
	Message     sdk.Message     `json:"message"`
}

// ErrNotFound: no such dead letter.
var ErrNotFound = errors.New("no such dead letter")

// PutDeadLetter records d (replacing an earlier one of the same execution).
func (s *Store) PutDeadLetter(d DeadLetter) error {
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return s.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(deadBucket).Put([]byte(d.ExecutionID), data)
	})
}

// DeadLetters lists the dead letters, oldest first.
func (s *Store) DeadLetters() ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(deadBucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var d DeadLetter
			if json.Unmarshal(v, &d) == nil {
				out = append(out, d)
			}
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, err
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
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(deadBucket)
		if b == nil || b.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(id))
	})
}

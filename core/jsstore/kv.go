package jsstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/core/store"
)

// MarkDone records that an execution succeeded, for every controller: a
// redelivered event does not run it again.
func (s *Store) MarkDone(execID string, at time.Time) error {
	ctx, cancel := opCtx()
	defer cancel()
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(at.UnixNano()))
	if _, err := s.done.Put(ctx, execID, v[:]); err != nil {
		return fmt.Errorf("jsstore: record execution %s done in %s: %w", execID, DoneBucket, err)
	}
	return nil
}

// IsDone reports whether an execution succeeded before, on any
// controller. When the bucket cannot be read it says no: the execution
// runs (maybe a second time) rather than not at all.
func (s *Store) IsDone(execID string) bool {
	ctx, cancel := opCtx()
	defer cancel()
	_, err := s.done.Get(ctx, execID)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.log.Warn("finished executions unreadable; running the execution", "execution", execID, "error", err)
	}
	return err == nil
}

// kvKey turns parts into a valid key (hex of their hash): routes' names
// and events' values may hold any character.
func kvKey(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:20])
}

// uniqueValue is a de-duplication key's record.
type uniqueValue struct {
	Route   string `json:"route"`
	Event   string `json:"event,omitempty"`
	Expires int64  `json:"expires,omitempty"` // unix nanos; 0: never
}

// Seen reports whether key was already recorded for route (by any
// controller) and has not expired; if not, it records it until now+ttl
// (ttl 0: no expiry). Two controllers seeing the same key at once: one
// records it, the other sees it.
func (s *Store) Seen(route, key string, ttl time.Duration, now time.Time) (bool, error) {
	return s.SeenFor(route, key, "", ttl, now)
}

// SeenFor is Seen for event eventID: a key recorded by that same event
// (before its controller died and the event was redelivered) does not
// count as seen, so the redelivered event still runs its actions.
func (s *Store) SeenFor(route, key, eventID string, ttl time.Duration, now time.Time) (bool, error) {
	k := kvKey("u.", route, key)
	v := uniqueValue{Route: route, Event: eventID}
	if ttl > 0 {
		v.Expires = now.Add(ttl).UnixNano()
	}
	data, _ := json.Marshal(v)
	ctx, cancel := opCtx()
	defer cancel()
	for try := range 50 {
		if try > 0 {
			backoff(try)
		}
		if _, err := s.unique.Create(ctx, k, data); err == nil {
			return false, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return false, fmt.Errorf("jsstore: route %q: de-duplication key: %w", route, err)
		}
		e, err := s.unique.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return false, fmt.Errorf("jsstore: route %q: de-duplication key: %w", route, err)
		}
		var old uniqueValue
		_ = json.Unmarshal(e.Value(), &old)
		if eventID != "" && old.Event == eventID {
			return false, nil
		}
		if old.Expires == 0 || now.UnixNano() < old.Expires {
			return true, nil
		}
		if _, err := s.unique.Update(ctx, k, data, e.Revision()); err == nil {
			return false, nil
		} else if !isConflict(err) {
			return false, fmt.Errorf("jsstore: route %q: de-duplication key: %w", route, err)
		}
	}
	return false, fmt.Errorf("jsstore: route %q: de-duplication key contended", route)
}

// Prune deletes expired de-duplication keys and returns how many.
func (s *Store) Prune(now time.Time) (int, error) {
	ctx, cancel := opCtx()
	defer cancel()
	lister, err := s.unique.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return 0, nil
		}
		return 0, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	n := 0
	for _, k := range keys {
		e, err := s.unique.Get(ctx, k)
		if err != nil {
			continue
		}
		var v uniqueValue
		if json.Unmarshal(e.Value(), &v) != nil || v.Expires == 0 || v.Expires > now.UnixNano() {
			continue
		}
		if s.unique.Delete(ctx, k, jetstream.LastRevision(e.Revision())) == nil {
			n++
		}
	}
	return n, nil
}

// backoff waits a little, at random, before a compare-and-set is tried
// again, so that contenders spread out.
func backoff(try int) {
	time.Sleep(time.Duration(rand.Int64N(int64(min(try, 20)) * int64(time.Millisecond))))
}

// isConflict reports a compare-and-set that lost: the key changed since
// it was read (servers since 2.11 say so with code 10164, before with 10071).
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) ||
		(errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)) ||
		strings.Contains(err.Error(), "wrong last sequence")
}

// aggrValue is a route's pending aggregation.
type aggrValue struct {
	Route string       `json:"route"`
	First int64        `json:"first"` // unix nanos of the first item
	Items []store.Item `json:"items"`
}

// Aggregate adds item to route's pending aggregation, shared by every
// controller. When the count reaches n (n > 0), the batch is removed and
// returned (to exactly one controller). An event already pending (its
// controller died after adding it; the event was redelivered) is not
// added twice.
func (s *Store) Aggregate(route string, item store.Item, n int, now time.Time) (*store.Batch, error) {
	k := kvKey("a.", route)
	ctx, cancel := opCtx()
	defer cancel()
	for try := range 200 {
		if try > 0 {
			backoff(try)
		}
		var (
			v   aggrValue
			rev uint64
		)
		e, err := s.aggr.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			v = aggrValue{Route: route, First: now.UnixNano()}
		case err != nil:
			return nil, fmt.Errorf("jsstore: route %q: aggregation: %w", route, err)
		default:
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				return nil, fmt.Errorf("jsstore: route %q: aggregation unreadable: %w", route, err)
			}
			rev = e.Revision()
		}
		dup := false
		for _, it := range v.Items {
			if item.EventID != "" && it.EventID == item.EventID {
				dup = true
			}
		}
		if !dup {
			v.Items = append(v.Items, item)
		}
		if n > 0 && len(v.Items) >= n {
			if rev != 0 {
				if err := s.aggr.Delete(ctx, k, jetstream.LastRevision(rev)); err != nil {
					if isConflict(err) {
						continue
					}
					return nil, fmt.Errorf("jsstore: route %q: aggregation: %w", route, err)
				}
			}
			return &store.Batch{Route: route, Items: v.Items, First: time.Unix(0, v.First)}, nil
		}
		data, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		if rev == 0 {
			_, err = s.aggr.Create(ctx, k, data)
		} else {
			_, err = s.aggr.Update(ctx, k, data, rev)
		}
		if err == nil {
			return nil, nil
		}
		if !isConflict(err) {
			return nil, fmt.Errorf("jsstore: route %q: aggregation: %w", route, err)
		}
	}
	return nil, fmt.Errorf("jsstore: route %q: aggregation contended", route)
}

// Due removes and returns the aggregations whose first item is older than
// timeout for each route in timeouts; each batch goes to one controller.
func (s *Store) Due(timeouts map[string]time.Duration, now time.Time) ([]*store.Batch, error) {
	ctx, cancel := opCtx()
	defer cancel()
	var out []*store.Batch
	for route, timeout := range timeouts {
		if timeout <= 0 {
			continue
		}
		k := kvKey("a.", route)
		e, err := s.aggr.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("jsstore: route %q: aggregation: %w", route, err)
		}
		var v aggrValue
		if err := json.Unmarshal(e.Value(), &v); err != nil || now.Sub(time.Unix(0, v.First)) < timeout {
			continue
		}
		if err := s.aggr.Delete(ctx, k, jetstream.LastRevision(e.Revision())); err != nil {
			if isConflict(err) {
				continue // changed meanwhile: looked at again next time
			}
			return out, fmt.Errorf("jsstore: route %q: aggregation: %w", route, err)
		}
		if len(v.Items) > 0 {
			out = append(out, &store.Batch{Route: route, Items: v.Items, First: time.Unix(0, v.First)})
		}
	}
	return out, nil
}

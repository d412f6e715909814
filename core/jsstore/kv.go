package jsstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
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
	time.Sleep(backoffDelay(try))
}

func backoffDelay(try int) time.Duration {
	return time.Duration(rand.Int64N(int64(min(try, 20)) * int64(time.Millisecond)))
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
	// Taken is the id of the batch the items were frozen into (by
	// AggregateKeep or DueKeep) while it is handed over to the inbox
	// stream: no item is added to it any more, and any controller that
	// finds it finishes the hand-over (handOver).
	Taken string `json:"taken,omitempty"`
}

func (v *aggrValue) batch() *store.Batch {
	return &store.Batch{Route: v.Route, Items: v.Items, First: time.Unix(0, v.First), ID: v.Taken}
}

func batchID(route string, items []store.Item) string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.EventID
	}
	return store.BatchID(route, ids)
}

// Aggregate adds item to route's pending aggregation, shared by every
// controller. When the count reaches n (n > 0), the batch is removed and
// returned (to exactly one controller). An event already pending (its
// controller died after adding it; the event was redelivered) is not
// added twice.
func (s *Store) Aggregate(route string, item store.Item, n int, now time.Time) (*store.Batch, error) {
	return s.aggregate(route, item, n, now, false)
}

// AggregateKeep is Aggregate for durable controllers: a full batch is not
// returned but handed over to the inbox stream (handOver), from which one
// controller sends it; it is never only in the memory of the controller
// that took it. replayed is not needed: an item already pending is never
// added twice.
func (s *Store) AggregateKeep(route string, item store.Item, n int, now time.Time, _ bool) (*store.Batch, error) {
	return s.aggregate(route, item, n, now, true)
}

func (s *Store) aggregate(route string, item store.Item, n int, now time.Time, keep bool) (*store.Batch, error) {
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
		if v.Taken != "" {
			// A batch taken and not handed over yet (its controller
			// died, or is at it): hand it over, then start a new one.
			if err := s.handOver(ctx, k, &v, rev, true); err != nil {
				return nil, err
			}
			continue
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
			if keep {
				taken, err := s.take(ctx, k, &v, rev, now)
				if taken || err != nil {
					return nil, err
				}
				continue // changed meanwhile
			}
			if rev != 0 {
				if err := s.aggr.Delete(ctx, k, jetstream.LastRevision(rev)); err != nil {
					if isConflict(err) {
						continue
					}
					return nil, fmt.Errorf("jsstore: route %q: aggregation: %w", route, err)
				}
			}
			return v.batch(), nil
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

// take freezes v (read at revision rev; 0: not stored) as a batch and
// hands it over to the inbox stream; false when the entry changed
// meanwhile (nothing was taken). Once frozen the batch is safe: were its
// hand-over to fail, or this controller to die, the next controller to
// look at the route's entry (AggregateKeep, or DueKeep every second)
// hands it over.
func (s *Store) take(ctx context.Context, k string, v *aggrValue, rev uint64, now time.Time) (bool, error) {
	v.Taken = batchID(v.Route, v.Items)
	if rev == 0 {
		// Nothing stored (a batch of one): its event is not finished
		// before this returns, so a failure loses nothing either.
		if err := s.publishBatch(ctx, v.batch(), now, false); err != nil {
			return false, err
		}
		return true, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	newRev, err := s.aggr.Update(ctx, k, data, rev)
	if err != nil {
		if isConflict(err) {
			return false, nil
		}
		return false, fmt.Errorf("jsstore: route %q: aggregation: %w", v.Route, err)
	}
	if err := s.handOver(ctx, k, v, newRev, false); err != nil {
		s.log.Warn("aggregation taken but not handed over yet; the next controller to look at the route does it", "route", v.Route, "id", v.Taken, "error", err)
	}
	return true, nil
}

// handOver publishes the frozen batch v (entry k at revision rev) to the
// inbox stream, then deletes the entry. The message id is the batch's, so
// that the stream keeps one copy however many controllers hand the same
// batch over within its duplicate window (DefaultDupWindow). again marks a
// batch this controller did not freeze: it may have been sent before, and
// its executions that succeeded are skipped.
func (s *Store) handOver(ctx context.Context, k string, v *aggrValue, rev uint64, again bool) error {
	if err := s.publishBatch(ctx, v.batch(), time.Now(), again); err != nil {
		return err
	}
	if err := s.aggr.Delete(ctx, k, jetstream.LastRevision(rev)); err != nil && !isConflict(err) && !errors.Is(err, jetstream.ErrKeyNotFound) {
		// Published: the entry is deleted by whoever looks at it next
		// (the stream stores the batch once).
		return fmt.Errorf("jsstore: route %q: aggregation: %w", v.Route, err)
	}
	return nil
}

// publishBatch stores b in the inbox stream as an inbox record of its own
// (store.BatchRecord, message id b.ID, header Postee-Kind: aggregation).
func (s *Store) publishBatch(ctx context.Context, b *store.Batch, taken time.Time, again bool) error {
	a := store.BatchRecord(b, taken)
	msg := nats.NewMsg(InboxSubject)
	msg.Header.Set(hdrID, a.ID)
	msg.Header.Set(hdrReceived, strconv.FormatInt(a.Received.UnixNano(), 10))
	msg.Header.Set(hdrRoute, a.Route)
	msg.Header.Set(hdrKind, kindAggregation)
	if again {
		msg.Header.Set(hdrAgain, "1")
	}
	msg.Data = a.Event
	for try := 1; ; try++ {
		_, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(a.ID))
		if err == nil {
			return nil
		}
		if !isMsgIDInProcess(err) || !sleepCtx(ctx, backoffDelay(try)) {
			return fmt.Errorf("jsstore: route %q: store aggregation %s in %s: %w", b.Route, a.ID, InboxStream, err)
		}
		// Another controller (or this one) is handing the same batch
		// over at this moment: asked again, the stream answers that it
		// stored it (a duplicate), or stores it if that publish failed.
	}
}

// isMsgIDInProcess reports a publish refused because another publish with
// the same message id is being stored (not yet committed on the stream's
// replicas): code 10158, "duplicate message id is in process". Whether
// the batch is stored is not known yet.
func isMsgIDInProcess(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeMsgIDInProcess
}

// jsErrCodeMsgIDInProcess is JetStream's JSStreamDuplicateMessageConflict
// (nats.go names no constant for it).
const jsErrCodeMsgIDInProcess jetstream.ErrorCode = 10158

// sleepCtx waits d, or less if ctx ends first; false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Due removes and returns the aggregations whose first item is older than
// timeout for each route in timeouts; each batch goes to one controller.
func (s *Store) Due(timeouts map[string]time.Duration, now time.Time) ([]*store.Batch, error) {
	return s.due(timeouts, now, false)
}

// DueKeep is Due for durable controllers: each batch due is handed over to
// the inbox stream, as with AggregateKeep, and none is returned. It also
// hands over the batches taken and not handed over yet on every route in
// timeouts, those with timeout 0 included.
func (s *Store) DueKeep(timeouts map[string]time.Duration, now time.Time) ([]*store.Batch, error) {
	return s.due(timeouts, now, true)
}

func (s *Store) due(timeouts map[string]time.Duration, now time.Time, keep bool) ([]*store.Batch, error) {
	ctx, cancel := opCtx()
	defer cancel()
	var (
		out  []*store.Batch
		errs []error // one route's failure does not hold the others back
	)
	for route, timeout := range timeouts {
		if timeout <= 0 && !keep {
			continue
		}
		k := kvKey("a.", route)
		e, err := s.aggr.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("jsstore: route %q: aggregation: %w", route, err))
			continue
		}
		var v aggrValue
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			continue
		}
		if v.Taken != "" {
			if err := s.handOver(ctx, k, &v, e.Revision(), true); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if timeout <= 0 || now.Sub(time.Unix(0, v.First)) < timeout {
			continue
		}
		if keep {
			if len(v.Items) > 0 {
				if _, err := s.take(ctx, k, &v, e.Revision(), now); err != nil {
					errs = append(errs, err)
				}
			}
			continue // not taken: changed meanwhile, looked at again next time
		}
		if err := s.aggr.Delete(ctx, k, jetstream.LastRevision(e.Revision())); err != nil {
			if isConflict(err) {
				continue // changed meanwhile: looked at again next time
			}
			errs = append(errs, fmt.Errorf("jsstore: route %q: aggregation: %w", route, err))
			continue
		}
		if len(v.Items) > 0 {
			out = append(out, v.batch())
		}
	}
	return out, errors.Join(errs...)
}

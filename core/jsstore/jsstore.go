// Package jsstore keeps a controller's state in a NATS JetStream cluster
// instead of its local bbolt file, so that any number of controllers share
// it and losing one of them (or one NATS node) loses nothing:
//
//   - the inbox: every accepted event is published to a replicated stream
//     before postee answers 2xx, and processed by exactly one live
//     controller through a shared durable consumer; it is acknowledged
//     once its actions finished, and redelivered to another controller when
//     the one processing it dies;
//   - the record of finished executions, so that a redelivered event's
//     executions that completed are not run again;
//   - the state of route plugins: de-duplication keys and pending
//     aggregations, updated with compare-and-set so that two controllers
//     never both take a key or a batch.
//
// A batch taken from an aggregation is never only in the memory of the
// controller that took it (kv.go, AggregateKeep and DueKeep): the
// controller first freezes the aggregation's entry as that batch
// (compare-and-set: no item is added to it any more, and only one
// controller freezes it), then publishes the batch to the inbox stream as a
// message of its own (message id: the batch's id, store.BatchID; header
// Postee-Kind: aggregation), then deletes the entry. Whichever controller
// the stream hands the batch to sends it, and acknowledges it once its
// actions finished, as it does an event; it is redelivered if that
// controller dies. A controller that dies after freezing leaves the entry
// frozen: the next controller to look at the route (the next event of the
// route, or every second on each controller) publishes the batch and
// deletes the entry. Publishing is idempotent within the stream's
// duplicate window (DefaultDupWindow), also when several controllers hand
// the same batch over at once (a publish refused while the same id is
// being stored is asked again until the stream answers, kv.go
// publishBatch); a batch published again later (its
// controller died between publishing and deleting, and no controller
// looked at the route for that long) is marked as possibly sent before
// (Postee-Again), so its executions recorded as finished are skipped.
//
// The methods on state mirror core/store's, so the engine uses either.
package jsstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/internal/jsretry"
)

// Names of what jsstore creates in JetStream.
const (
	InboxStream   = "POSTEE_INBOX"
	InboxSubject  = "postee.inbox"
	InboxConsumer = "postee-controllers"
	DoneBucket    = "postee-done"
	UniqueBucket  = "postee-unique"
	AggrBucket    = "postee-aggregation"
)

// Defaults for Options.
const (
	DefaultAckWait   = 30 * time.Second
	DefaultDoneTTL   = 7 * 24 * time.Hour
	DefaultDupWindow = 10 * time.Minute
	opTimeout        = 10 * time.Second
)

// Options configure Open.
type Options struct {
	// Replicas of every stream and bucket; 0: 3 when the cluster has at
	// least 3 servers, else 1 (AutoReplicas).
	Replicas int
	// AckWait is how long an event may go unacknowledged (no progress
	// heard) before it is redelivered to another controller
	// (DefaultAckWait). A controller working on an event says so every
	// AckWait/3.
	AckWait time.Duration
	// DoneTTL is how long the record of a finished execution is kept
	// (DefaultDoneTTL).
	DoneTTL time.Duration
	// MaxInboxBytes bounds the events waiting (0: no bound); past it new
	// events are refused (the producer gets a 503) rather than old ones
	// dropped.
	MaxInboxBytes int64
	Logger        hclog.Logger
}

// Store is the shared state in JetStream.
type Store struct {
	o        Options
	log      hclog.Logger
	js       jetstream.JetStream
	inbox    jetstream.Stream
	done     jetstream.KeyValue
	unique   jetstream.KeyValue
	aggr     jetstream.KeyValue
	counters counters

	flightMu  sync.Mutex
	flight    *inFlight
	closing   chan struct{}
	closeOnce sync.Once
	running   sync.WaitGroup
}

// AutoReplicas is the replica count for a cluster of servers nodes: 3 from
// three nodes on (any one can be lost), else 1.
func AutoReplicas(servers int) int {
	if servers >= 3 {
		return 3
	}
	return 1
}

// Open creates (or checks) the inbox stream, its shared consumer and the
// buckets on nc's JetStream.
func Open(ctx context.Context, nc *nats.Conn, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	if o.DoneTTL <= 0 {
		o.DoneTTL = DefaultDoneTTL
	}
	if o.Replicas <= 0 {
		o.Replicas = AutoReplicas(len(nc.Servers()))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s := &Store{o: o, log: o.Logger.Named("jsstore"), js: js, closing: make(chan struct{})}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	maxBytes := o.MaxInboxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	streamCfg := jetstream.StreamConfig{
		Name:        InboxStream,
		Description: "postee: accepted events until their actions finished",
		Subjects:    []string{InboxSubject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Duplicates:  DefaultDupWindow,
		MaxBytes:    maxBytes,
		Discard:     jetstream.DiscardNew,
	}
	s.inbox, err = jsretry.Do(ctx, func(ctx context.Context) (jetstream.Stream, error) { return ensureStream(ctx, js, streamCfg) })
	if err != nil {
		return nil, replicasHint(fmt.Errorf("jsstore: stream %s (replicas %d): %w", InboxStream, o.Replicas, err), o.Replicas)
	}
	consCfg := jetstream.ConsumerConfig{
		Durable:       InboxConsumer,
		Description:   "postee: every controller pulls from it; each event goes to one",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 10000,
		Replicas:      o.Replicas,
	}
	_, err = jsretry.Do(ctx, func(ctx context.Context) (jetstream.Consumer, error) { return ensureConsumer(ctx, s.inbox, consCfg) })
	if err != nil {
		return nil, fmt.Errorf("jsstore: consumer %s: %w", InboxConsumer, err)
	}
	buckets := []struct {
		kv   *jetstream.KeyValue
		name string
		ttl  time.Duration
		desc string
	}{
		{&s.done, DoneBucket, o.DoneTTL, "postee: executions that finished (not run again when their event is redelivered)"},
		{&s.unique, UniqueBucket, 0, "postee: de-duplication keys of routes' unique-message-props"},
		{&s.aggr, AggrBucket, 0, "postee: pending aggregations of routes"},
	}
	for _, b := range buckets {
		kvCfg := jetstream.KeyValueConfig{
			Bucket: b.name, Description: b.desc, TTL: b.ttl, History: 1,
			Storage: jetstream.FileStorage, Replicas: o.Replicas,
		}
		kv, err := jsretry.Do(ctx, func(ctx context.Context) (jetstream.KeyValue, error) { return ensureKV(ctx, js, kvCfg) })
		if err != nil {
			return nil, replicasHint(fmt.Errorf("jsstore: bucket %s (replicas %d): %w", b.name, o.Replicas, err), o.Replicas)
		}
		*b.kv = kv
	}
	s.log.Info("shared state in JetStream", "stream", InboxStream, "replicas", o.Replicas, "ack_wait", o.AckWait)
	return s, nil
}

// ensureStream uses the stream as it is when its replicas and subjects are
// those wanted (a controller starting while a NATS node is down needs no
// change from the cluster's meta leader), else creates or updates it.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if st, err := js.Stream(ctx, cfg.Name); err == nil {
		c := st.CachedInfo().Config
		if c.Replicas == cfg.Replicas && c.MaxBytes == cfg.MaxBytes && c.Retention == cfg.Retention {
			return st, nil
		}
	}
	return js.CreateOrUpdateStream(ctx, cfg)
}

func ensureConsumer(ctx context.Context, st jetstream.Stream, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if c, err := st.Consumer(ctx, cfg.Durable); err == nil {
		if info := c.CachedInfo(); info.Config.AckWait == cfg.AckWait && info.Config.Replicas == cfg.Replicas {
			return c, nil
		}
	}
	return st.CreateOrUpdateConsumer(ctx, cfg)
}

func ensureKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if kv, err := js.KeyValue(ctx, cfg.Bucket); err == nil {
		if st, err := kv.Status(ctx); err == nil {
			if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo().Config.Replicas == cfg.Replicas && st.TTL() == cfg.TTL {
				return kv, nil
			}
		}
	}
	return js.CreateOrUpdateKeyValue(ctx, cfg)
}

// replicasHint explains the usual cause of a refused replicated stream.
func replicasHint(err error, replicas int) error {
	var apiErr *jetstream.APIError
	if replicas > 1 && errors.As(err, &apiErr) {
		return fmt.Errorf("%w (a stream with %d replicas needs a JetStream cluster with at least %d nodes up; set --nats-replicas to match it)", err, replicas, replicas)
	}
	return err
}

// Replicas is the replica count in use.
func (s *Store) Replicas() int { return s.o.Replicas }

func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

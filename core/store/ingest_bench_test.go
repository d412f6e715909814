package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/internal/testevents"
)

// The choice of durable ingest: the store's append-only inbox log (chosen)
// against an embedded JetStream file stream, both writing a 5 KB event
// durably before returning, from 32 concurrent producers as in the load run.

func BenchmarkIngestStore(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	raw := testevents.Trivy(1, 20)
	b.SetBytes(int64(len(raw)))
	b.SetParallelism(16) // 32 producers on 2 CPUs
	var n int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("%016x-%p", time.Now().UnixNano(), &n)
			if err := s.Accept(Accepted{ID: id, Received: time.Now(), Event: raw}); err != nil {
				b.Fatal(err)
			}
			if err := s.Finish(id); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkIngestJetStream(b *testing.B) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: b.TempDir(), NoSigs: true, NoLog: true, SyncAlways: true})
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats not ready")
	}
	defer ns.Shutdown()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	// SyncAlways (server option): acknowledged only once on disk, as the inbox log's fdatasync.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "INGEST", Subjects: []string{"ingest"},
		Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy}); err != nil {
		b.Fatal(err)
	}
	raw := testevents.Trivy(1, 20)
	b.SetBytes(int64(len(raw)))
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := js.Publish(ctx, "ingest", raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

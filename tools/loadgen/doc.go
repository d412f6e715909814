// Command loadgen is the end-to-end load run behind `make bench`.
//
// It starts a local HTTP sink, writes a config with one route
// (contains(input.image, "alpine")) → template postee.rawmessage.json → one
// http action POSTing to the sink, starts the postee binary on it, and has
// concurrent senders POST ~5 KB Trivy-like reports (internal/testevents) to
// postee's webhook, first for a warm-up, then for the measured duration (or a
// fixed number of events). It then waits for the sink to receive every event
// postee accepted and reports the delivered rate, the latency from the start
// of the POST to the sink's arrival and to postee's answer, the
// accepted/rejected/lost counts and the peak resident memory of postee and
// of its plugin processes:
//
//	go run ./tools/loadgen -postee bin/postee -plugin-dir bin/plugins \
//		[-senders 32] [-duration 20s] [-warmup 3s] [-events 0] [-vulns 20] [-json out.json]
//
// -relay first measures a bare Go relay (decode, re-encode, forward to the
// same sink; relay.go) under the same load and prints postee's ratio to it.
// The relay runs inside loadgen unless -relay-process starts it as its own
// process (loadgen -serve-relay; -relay-gogc sets its GOGC).
// -suite is `make bench`: the relay, standalone postee and controller →
// runner dispatch in turn, in -rounds rounds, every other one in the reverse
// order (a ratio is the median of the rounds'), then --no-durable-ingest, idle memory and the start time with
// four plugins, and a table of each figure beside its goal (suite.go;
// -strict exits 1 when a goal is not met). profile.sh takes the
// CPU, alloc and heap profiles and the fsync count under the same load
// (docs/performance.md).
//
// Everything runs on loopback and is bounded in time. The exit status is 1
// when an accepted event never reached the sink, 2 on a usage or setup error.
package main

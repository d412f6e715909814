package cluster

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/postee-dev/postee/core/cluster/clusterpb"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/sdk/protocol"
)

// Work and outcomes travel as protobuf (clusterpb): the event and
// the rendered message are kilobytes of text that JSON would escape and
// unescape on every hop; decoding JSON was 40% of a runner's CPU.

func encodeWork(w *record.Work) ([]byte, error) {
	return proto.Marshal(&clusterpb.Work{
		Runner: w.Runner, ExecutionId: w.ExecutionID, EventId: w.EventID, Route: w.Route, Action: w.Action,
		Origin: w.Origin, EventJson: w.Event, Message: protocol.MessageToPB(protocol.Message(w.Message)),
	})
}

func decodeWork(data []byte) (*record.Work, error) {
	var pb clusterpb.Work
	if err := proto.Unmarshal(data, &pb); err != nil {
		return nil, err
	}
	return &record.Work{
		Runner: pb.GetRunner(), ExecutionID: pb.GetExecutionId(), EventID: pb.GetEventId(), Route: pb.GetRoute(),
		Action: pb.GetAction(), Origin: pb.GetOrigin(), Event: pb.GetEventJson(), Message: record.Message(protocol.MessageFromPB(pb.GetMessage())),
	}, nil
}

func encodeOutcome(x record.Execution) ([]byte, error) {
	return proto.Marshal(&clusterpb.Outcome{
		ExecutionId: x.ID, EventId: x.EventID, Route: x.Route, Action: x.Action,
		StartedUnixNano: x.Started.UnixNano(), DurationNanos: int64(x.Duration),
		Output: x.Output, Details: x.Details, Error: x.Err,
	})
}

// decodeOutcome reads an outcome; the runner is set by the caller from the
// subject (identity never comes from a payload).
func decodeOutcome(data []byte) (record.Execution, error) {
	var pb clusterpb.Outcome
	if err := proto.Unmarshal(data, &pb); err != nil {
		return record.Execution{}, err
	}
	return record.Execution{
		ID: pb.GetExecutionId(), EventID: pb.GetEventId(), Route: pb.GetRoute(), Action: pb.GetAction(),
		Started: time.Unix(0, pb.GetStartedUnixNano()), Duration: time.Duration(pb.GetDurationNanos()),
		Output: pb.GetOutput(), Details: pb.GetDetails(), Err: pb.GetError(),
	}, nil
}

// An outcome batch is several outcome reports of one runner in one
// message (subject postee.up.<runner>.outcomes): each report's encoded
// clusterpb.Outcome as field 1, repeated bytes — on the wire a protobuf
// message `repeated bytes outcomes = 1`. A runner sends batches only to a
// controller that offers them (outcomeBatchHeader on its bootstrap reply);
// one report per message costs the controller's NATS server and client a
// publish, an acknowledgement, a delivery and an ack each.
const (
	// outcomeBatchHeader on a bootstrap reply says the controller reads
	// outcome batches.
	outcomeBatchHeader = "Postee-Outcome-Batches"
	// maxBatchOutcomes and maxBatchBytes bound a batch.
	maxBatchOutcomes = 64
	maxBatchBytes    = 256 << 10
)

// resendEventsHeader on a bootstrap reply asks the runner to send each
// event report once more this long (a Go duration) after JetStream
// acknowledged it: the controller's embedded server syncs its files
// periodically (SyncInterval), so a power loss can take acknowledged
// reports with it; the second copy is a duplicate JetStream drops, unless
// the first was lost. Event reports only: a lost outcome of dispatched
// work is reported again when the controller dispatches the held event
// again after its restart.
const resendEventsHeader = "Postee-Resend-Events-After"

// appendBatchOutcome adds an encoded outcome to batch b.
func appendBatchOutcome(b, outcome []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	return protowire.AppendBytes(b, outcome)
}

// batchOutcomeSize is what an outcome of n bytes adds to a batch.
func batchOutcomeSize(n int) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(n)
}

// splitOutcomeBatch returns the encoded outcomes of a batch (sub-slices of
// data).
func splitOutcomeBatch(data []byte) ([][]byte, error) {
	var out [][]byte
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return nil, fmt.Errorf("outcome batch: %w", protowire.ParseError(n))
		}
		if num != 1 || typ != protowire.BytesType {
			return nil, fmt.Errorf("outcome batch: unexpected field %d of type %d", num, typ)
		}
		data = data[n:]
		v, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return nil, fmt.Errorf("outcome batch: %w", protowire.ParseError(n))
		}
		out = append(out, v)
		data = data[n:]
	}
	if len(out) == 0 {
		return nil, errors.New("empty outcome batch")
	}
	return out, nil
}

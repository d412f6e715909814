package cluster

import (
	"time"

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

package cluster

import (
	"errors"
	"time"
	"unicode/utf8"
	"unsafe"

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

// decodeWork reads work without copying it: the event and the message's
// strings share data (a message the NATS client gave the runner alone, never
// changed). proto.Unmarshal would copy the ~10 KB of every work item twice
// more, a third of the bytes a runner allocated under load. It reads what
// proto.Unmarshal reads (TestDecodeWorkMatchesProto, FuzzDecodeWork): the last
// of a repeated field, an embedded message merged, unknown fields skipped,
// strings valid UTF-8.
func decodeWork(data []byte) (*record.Work, error) {
	w := &record.Work{}
	err := eachField(data, func(num protowire.Number, v []byte) error {
		if num == 7 {
			w.Event = v[:len(v):len(v)]
			return nil
		}
		var dst *string
		switch num {
		case 1:
			dst = &w.Runner
		case 2:
			dst = &w.ExecutionID
		case 3:
			dst = &w.EventID
		case 4:
			dst = &w.Route
		case 5:
			dst = &w.Action
		case 6:
			dst = &w.Origin
		case 8:
			return decodeMessage(v, &w.Message)
		default:
			return nil
		}
		return setString(dst, v)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

func decodeMessage(data []byte, m *record.Message) error {
	fields := [...]*string{1: &m.Title, 2: &m.Description, 3: &m.URL, 4: &m.Date, 5: &m.Severity, 6: &m.Summary,
		7: &m.Category, 8: &m.Subcategory, 9: &m.AssignedTo, 10: &m.AssignedGroup}
	return eachField(data, func(num protowire.Number, v []byte) error {
		if num < 1 || int(num) >= len(fields) {
			return nil
		}
		return setString(fields[num], v)
	})
}

// setString sets *dst to v, shared, once it is valid UTF-8.
func setString(dst *string, v []byte) error {
	if !utf8.Valid(v) {
		return errors.New("proto: string field contains invalid UTF-8")
	}
	*dst = unsafe.String(unsafe.SliceData(v), len(v))
	return nil
}

// eachField calls f with the number and value of each length-delimited
// field of the protobuf message data, skipping fields of other wire types:
// none of the fields read here has another, and proto.Unmarshal too treats
// a known field of the wrong wire type as unknown.
func eachField(data []byte, f func(protowire.Number, []byte) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if !num.IsValid() {
			return errors.New("proto: cannot parse invalid wire-format data")
		}
		data = data[n:]
		if typ != protowire.BytesType {
			m := protowire.ConsumeFieldValue(num, typ, data)
			if m < 0 {
				return protowire.ParseError(m)
			}
			data = data[m:]
			continue
		}
		v, m := protowire.ConsumeBytes(data)
		if m < 0 {
			return protowire.ParseError(m)
		}
		data = data[m:]
		if err := f(num, v); err != nil {
			return err
		}
	}
	return nil
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

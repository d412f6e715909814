package cluster

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/postee-dev/postee/core/cluster/clusterpb"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/sdk/protocol"
)

// decodeWorkProto is decodeWork by proto.Unmarshal: the reference.
func decodeWorkProto(data []byte) (*record.Work, error) {
	var pb clusterpb.Work
	if err := proto.Unmarshal(data, &pb); err != nil {
		return nil, err
	}
	return &record.Work{
		Runner: pb.GetRunner(), ExecutionID: pb.GetExecutionId(), EventID: pb.GetEventId(), Route: pb.GetRoute(),
		Action: pb.GetAction(), Origin: pb.GetOrigin(), Event: pb.GetEventJson(), Message: record.Message(protocol.MessageFromPB(pb.GetMessage())),
	}, nil
}

// sameWork compares two decoded works (a nil and an empty event are the same).
func sameWork(a, b *record.Work) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	if a == nil {
		return true
	}
	x, y := *a, *b
	if len(x.Event) == 0 && len(y.Event) == 0 {
		x.Event, y.Event = nil, nil
	}
	return reflect.DeepEqual(x, y)
}

func workSeeds() [][]byte {
	full, _ := encodeWork(&record.Work{Runner: "r1", ExecutionID: "x", EventID: "e", Route: "route", Action: "act", Origin: "o",
		Event: []byte(`{"a":"é"}`), Message: record.Message{Title: "t", Description: "d\\n", URL: "u", Date: "1", Severity: "s",
			Summary: "su", Category: "c", Subcategory: "sc", AssignedTo: "to", AssignedGroup: "g"}})
	// A field repeated (the last wins), the message twice (merged),
	// unknown fields of every wire type, a known field of the wrong type.
	var odd []byte
	odd = protowire.AppendTag(odd, 2, protowire.BytesType)
	odd = protowire.AppendString(odd, "first")
	odd = protowire.AppendTag(odd, 2, protowire.BytesType)
	odd = protowire.AppendString(odd, "second")
	msg1 := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "title")
	msg2 := protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), "desc")
	odd = protowire.AppendBytes(protowire.AppendTag(odd, 8, protowire.BytesType), msg1)
	odd = protowire.AppendBytes(protowire.AppendTag(odd, 8, protowire.BytesType), msg2)
	odd = protowire.AppendVarint(protowire.AppendTag(odd, 99, protowire.VarintType), 7)
	odd = protowire.AppendFixed32(protowire.AppendTag(odd, 98, protowire.Fixed32Type), 7)
	odd = protowire.AppendFixed64(protowire.AppendTag(odd, 97, protowire.Fixed64Type), 7)
	odd = protowire.AppendString(protowire.AppendTag(odd, 96, protowire.BytesType), "unknown")
	odd = protowire.AppendVarint(protowire.AppendTag(odd, 3, protowire.VarintType), 5)
	bad := protowire.AppendString(protowire.AppendTag(nil, 4, protowire.BytesType), "\xff")
	truncated := full[:len(full)-3]
	return [][]byte{full, odd, bad, truncated, nil, {0x08}}
}

func TestDecodeWorkMatchesProto(t *testing.T) {
	for i, data := range workSeeds() {
		got, gerr := decodeWork(data)
		want, werr := decodeWorkProto(data)
		if (gerr == nil) != (werr == nil) || (gerr == nil && !sameWork(got, want)) {
			t.Errorf("seed %d: got %+v (%v), want %+v (%v)", i, got, gerr, want, werr)
		}
	}
	// Nothing is copied: the event shares the message's bytes.
	data := workSeeds()[0]
	w, _ := decodeWork(data)
	if len(w.Event) == 0 || &w.Event[0] == nil || !sharesBytes(data, w.Event) {
		t.Error("the event was copied")
	}
}

func sharesBytes(buf, sub []byte) bool {
	for i := range buf {
		if &buf[i] == &sub[0] {
			return true
		}
	}
	return false
}

func FuzzDecodeWork(f *testing.F) {
	for _, s := range workSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := decodeWork(data)
		want, werr := decodeWorkProto(data)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%q: decodeWork error %v, proto %v", data, gerr, werr)
		}
		if gerr == nil && !sameWork(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", data, got, want)
		}
	})
}

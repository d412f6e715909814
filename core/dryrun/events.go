package dryrun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/postee-dev/postee/core/event"
)

// ReadEvents reads the events of a `postee test` input: one JSON object, a
// JSON array of objects, or several objects one after another (JSON
// lines). name is used in errors ("-" for stdin). Each event is checked as
// the webhook checks a body.
func ReadEvents(name string, r io.Reader) ([][]byte, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%s: no event: the input is empty", name)
	}
	var raws []json.RawMessage
	if trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, fmt.Errorf("%s: not a JSON array of events: %w", name, err)
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: event %d: invalid JSON: %w (line %d)", name, len(raws)+1, err, lineAt(trimmed, dec.InputOffset()))
			}
			raws = append(raws, raw)
		}
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("%s: no event: the array is empty", name)
	}
	out := make([][]byte, len(raws))
	for i, raw := range raws {
		if err := event.Validate(raw); err != nil {
			return nil, fmt.Errorf("%s: event %d: %w", name, i+1, err)
		}
		out[i] = raw
	}
	return out, nil
}

// lineAt is the 1-based line of offset in data.
func lineAt(data []byte, offset int64) int {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	return bytes.Count(data[:offset], []byte("\n")) + 1
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// maxBatch is the most findings BatchImportFindings takes in one call.
const maxBatch = 100

// finding is one ASFF finding as the template produced it.
type finding struct {
	id  string
	raw json.RawMessage // compact JSON object
}

// parseFindings reads the findings of a description: an object with a
// Findings list (the key matched case-insensitively, as Trivy's ASFF output
// writes it), a list of findings, or a single finding (an object with an
// Id). Every finding must be a JSON object with a non-empty string Id; Ids
// may repeat (Trivy's ASFF output gives a CVE found in two packages of one
// target the same Id); they are sent as they are.
func parseFindings(desc string) ([]finding, error) {
	d := bytes.TrimSpace([]byte(desc))
	if len(d) == 0 {
		return nil, errors.New("the message description is empty: it must hold ASFF findings ({\"Findings\": [...]}, a list of findings or one finding)")
	}
	var list []json.RawMessage
	switch d[0] {
	case '[':
		if err := json.Unmarshal(d, &list); err != nil {
			return nil, fmt.Errorf("the message description is not a JSON list of findings: %v", err)
		}
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(d, &obj); err != nil {
			return nil, fmt.Errorf("the message description is not valid JSON: %v", err)
		}
		key, n := "", 0
		for k := range obj {
			if strings.EqualFold(k, "findings") {
				key, n = k, n+1
			}
		}
		switch {
		case n > 1:
			return nil, errors.New("the message description has more than one Findings key (differing in case)")
		case n == 1:
			if err := json.Unmarshal(obj[key], &list); err != nil || list == nil && !bytes.Equal(bytes.TrimSpace(obj[key]), []byte("null")) {
				return nil, fmt.Errorf("%s in the message description is not a list of findings", key)
			}
		case obj["Id"] != nil:
			list = []json.RawMessage{d}
		default:
			return nil, errors.New("the message description has neither a Findings list nor an Id: it is not ASFF (use a template that renders Security Hub findings, e.g. postee.rawmessage.json on Trivy's ASFF output)")
		}
	default:
		return nil, errors.New("the message description is not JSON: it must hold ASFF findings ({\"Findings\": [...]}, a list of findings or one finding)")
	}

	out := make([]finding, 0, len(list))
	for i, raw := range list {
		var head struct {
			ID any `json:"Id"`
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &head) != nil {
			return nil, fmt.Errorf("finding %d is not a JSON object", i+1)
		}
		id, ok := head.ID.(string)
		if !ok || strings.TrimSpace(id) == "" {
			return nil, fmt.Errorf("finding %d has no Id (a non-empty string)", i+1)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, fmt.Errorf("finding %d: %v", i+1, err)
		}
		out = append(out, finding{id: id, raw: buf.Bytes()})
	}
	return out, nil
}

// batches splits findings into runs of at most size.
func batches(findings []finding, size int) [][]finding {
	var out [][]finding
	for len(findings) > 0 {
		n := min(size, len(findings))
		out = append(out, findings[:n])
		findings = findings[n:]
	}
	return out
}

// requestBody is the BatchImportFindings request for batch:
// {"Findings": [<each finding as the template wrote it>]}.
func requestBody(batch []finding) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Findings":[`)
	for i, f := range batch {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(f.raw)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

package sdkevent

import (
	"fmt"
	"strings"
	"testing"
)

const testEvent = `{
  "image": "alpine:3.18",
  "registry": null,
  "vulnerability_summary": {"critical": 2, "high": 12345678901234567890},
  "scanned": true,
  "vulnerabilities": [{"id": "CVE-1", "tags": ["a", "<b>"]}]
}`

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want string // parts: literals quoted, placeholders as paths
	}{
		{"", ``},
		{"plain", `"plain"`},
		{"event.input.a", `[a]`},
		{"x event.input.a.b-c_d.0[12].e y", `"x " [a b-c_d 0 12 e] " y"`},
		{"end of sentence event.input.a.", `"end of sentence " [a] "."`},
		{"event.input.a[x] event.input.b[1", `[a] "[x] " [b] "[1"`},
		{"event.input. event.input.[0] event.input", `"event.input. event.input.[0] event.input"`},
		{"event.input.event.input.a", `[event input a]`},
		{"eevent.input.a", `"e" [a]`},
		{`"event.input.ä"`, `"\"event.input.ä\""`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tmpl := Parse(tt.in)
			var got []string
			for _, p := range tmpl.parts {
				if p.path == nil {
					got = append(got, fmt.Sprintf("%q", p.literal))
				} else {
					got = append(got, fmt.Sprint(p.path))
				}
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Fatalf("parts = %s, want %s", s, tt.want)
			}
			hasPath := false
			for _, p := range tmpl.parts {
				hasPath = hasPath || p.path != nil
			}
			if tmpl.HasPlaceholders() != hasPath {
				t.Errorf("HasPlaceholders = %v, parts say %v", tmpl.HasPlaceholders(), hasPath)
			}
			if tmpl.String() != tt.in {
				t.Errorf("String = %q", tmpl.String())
			}
		})
	}
}

func TestExecute(t *testing.T) {
	tests := []struct {
		name, tmpl, event, want, wantErr string
		null                             Null
		wantMissing                      []string
	}{
		{name: "string", tmpl: "img=event.input.image", event: testEvent, want: "img=alpine:3.18"},
		{name: "number as written", tmpl: "event.input.vulnerability_summary.high", event: testEvent, want: "12345678901234567890"},
		{name: "bool", tmpl: "event.input.scanned", event: testEvent, want: "true"},
		{name: "object sorted, no HTML escaping", tmpl: "event.input.vulnerabilities[0]", event: testEvent, want: `{"id":"CVE-1","tags":["a","<b>"]}`},
		{name: "top level array index", tmpl: "event.input.0", event: `[1]`, want: "1"},
		{name: "path into a scalar", tmpl: "[event.input.image.x]", event: testEvent, want: "[]", wantMissing: []string{"event.input.image.x"}},
		{name: "negative index", tmpl: "[event.input.vulnerabilities.-1]", event: testEvent, want: "[]", wantMissing: []string{"event.input.vulnerabilities.-1"}},
		{name: "huge index", tmpl: "[event.input.vulnerabilities.99999999999999999999]", event: testEvent, want: "[]", wantMissing: []string{"event.input.vulnerabilities.99999999999999999999"}},
		{name: "bracket index reported dotted", tmpl: "event.input.a[3]", event: `{}`, want: "", wantMissing: []string{"event.input.a.3"}},
		{name: "null missing", tmpl: "r=event.input.registry", event: testEvent, want: "r=", wantMissing: []string{"event.input.registry"}},
		{name: "null as text", tmpl: "r=event.input.registry", event: testEvent, null: NullText, want: "r=null"},
		{name: "no placeholder, invalid event", tmpl: "static", event: `not json`, want: "static"},
		{name: "invalid event", tmpl: "event.input.a", event: `{"a":`, wantErr: "not valid JSON"},
		{name: "trailing data", tmpl: "event.input.a", event: `{"a":1} {}`, wantErr: "not valid JSON"},
		{name: "empty event", tmpl: "event.input.a", event: ``, wantErr: "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, missing, err := Parse(tt.tmpl).Execute([]byte(tt.event), tt.null)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Execute = %q, %v; want %q", got, err, tt.want)
			}
			if fmt.Sprint(missing) != fmt.Sprint(tt.wantMissing) {
				t.Errorf("missing = %q, want %q", missing, tt.wantMissing)
			}
		})
	}
}

func FuzzExecute(f *testing.F) {
	f.Add("plain text", []byte(`{}`))
	f.Add(`{"a":"event.input.a","b":event.input.b.c[0]}`, []byte(`{"a":"x","b":{"c":[1,2]}}`))
	f.Add("event.input.", []byte(`{"":1}`))
	f.Add("event.input.x[", []byte(`{"x":[1]}`))
	f.Add("event.input.0.1[2]", []byte(`[[0,[0,0,3]]]`))
	f.Add("event.input.a", []byte(`not json`))
	f.Add("event.inputevent.input.b", []byte(`{"b":null}`))
	f.Fuzz(func(t *testing.T, tmpl string, event []byte) {
		p := Parse(tmpl)
		out, _, err := p.Execute(event, NullText)
		if !p.HasPlaceholders() {
			if err != nil || out != tmpl {
				t.Fatalf("template without placeholders changed: %q -> %q, %v", tmpl, out, err)
			}
		}
		// With an empty object every placeholder is missing and vanishes:
		// the result is the template's literal text.
		out, missing, err := p.Execute([]byte(`{}`), NullMissing)
		if err != nil {
			t.Fatalf("Execute on {}: %v", err)
		}
		var lit strings.Builder
		placeholders := 0
		for _, p := range p.parts {
			lit.WriteString(p.literal)
			if p.path != nil {
				placeholders++
			}
		}
		if out != lit.String() || len(missing) != placeholders {
			t.Fatalf("Execute(%q, {}) = %q, %q; want the literals %q and %d missing", tmpl, out, missing, lit.String(), placeholders)
		}
	})
}

func BenchmarkExecute(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"image":"alpine:3.18","vulnerability_summary":{"critical":2,"high":10},"resources":[`)
	for i := range 40 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"name":"pkg%d","version":"1.%d","vulnerabilities":[{"name":"CVE-2024-%04d","severity":"HIGH"}]}`, i, i, i)
	}
	sb.WriteString(`]}`)
	event := []byte(sb.String())
	tmpl := Parse(`{"image":"event.input.image","critical":event.input.vulnerability_summary.critical,"first":"event.input.resources[0].vulnerabilities[0].name"}`)
	b.SetBytes(int64(len(event)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tmpl.Execute(event, NullText); err != nil {
			b.Fatal(err)
		}
	}
}

package event

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/postee-dev/postee/internal/testevents"
)

// validCorpus adds to corpus what only a validator can get wrong.
var validCorpus = []string{
	``, ` `, `{"a":1}x`, `{"a":[1 2]}`, `{"a":{"b"}}`, `{,}`, `[,1]`, `{"a":1,"b"}`, `{"a":-01}`, `{"a":0.e1}`,
	`{"a":1e+}`, `{"a":1E-5}`, `{"a":"\uDEAD"}`, `{"a":"\uG000"}`, `{"a":"\`, `{"a":"x`, `nul`, `null`, `false `,
	`{"a":[]  ,"b":{}}`, `[[[]]]`, `{"a":"` + "\x7f" + `"}`, "{\"a\":\"\t\"}", `{"a":1.5e3.2}`, `{"a":--1}`,
	`{"\u0000":0}`, `{"a":"\/"}`, `{"a":"\'"}`, `{1:2}`, `{"a":true,"b":fals}`,
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	all := append(append([]string{}, corpus...), validCorpus...)
	for depth := 9998; depth <= 10002; depth++ {
		all = append(all, strings.Repeat("[", depth)+strings.Repeat("]", depth))
		all = append(all, strings.Repeat(`{"a":`, depth)+"1"+strings.Repeat("}", depth))
	}
	for _, s := range all {
		if got, want := valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("valid(%.60q) = %v, json.Valid says %v", s, got, want)
		}
	}
}

func FuzzValidMatchesEncodingJSON(f *testing.F) {
	for _, s := range append(append([]string{}, corpus...), validCorpus...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := valid(b), json.Valid(b); got != want {
			t.Errorf("valid(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func BenchmarkAccept(b *testing.B) {
	raw := testevents.Trivy(1, 20)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Accept(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidEncodingJSON(b *testing.B) {
	raw := testevents.Trivy(1, 20)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		json.Valid(raw)
	}
}

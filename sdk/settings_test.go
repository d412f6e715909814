package sdk_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/postee-dev/postee/sdk"
)

type common struct {
	Timeout *sdk.PositiveDuration `json:"timeout"`
}

type exampleSettings struct {
	common
	URL  string       `json:"url"`
	Port int          `json:"port"`
	Size sdk.ByteSize `json:"size-limit"`
}

func TestDecodeMatchesKeysExactly(t *testing.T) {
	var s exampleSettings
	err := sdk.NewSettings(map[string]any{"URL": "https://x", "port": 1}).Decode(&s)
	var se *sdk.SettingsError
	if !errors.As(err, &se) || se.Key != "URL" || !strings.Contains(se.Message, `did you mean "url"`) {
		t.Fatalf("err = %v", err)
	}
	if err := sdk.NewSettings(map[string]any{"url": "https://x", "timeout": "5s", "name": "host key", "retry": map[string]any{}}).Decode(&s); err != nil {
		t.Fatalf("exact keys, an embedded struct's key and host keys must decode: %v", err)
	}
}

func TestDecodeReportsEveryProblem(t *testing.T) {
	var s exampleSettings
	err := sdk.NewSettings(map[string]any{"url": 3, "port": "x", "size-limit": "lots", "timeout": "1s"}).Decode(&s)
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *sdk.SettingsError
		if errors.As(e, &se) {
			keys = append(keys, se.Key)
		}
	}
	if !reflect.DeepEqual(keys, []string{"port", "size-limit", "url"}) {
		t.Fatalf("keys with errors = %v (%v)", keys, err)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "64KB": 64 << 10, "10MiB": 10 << 20, "1G": 1 << 30, " 2 k ": 2 << 10} {
		got, err := sdk.ParseByteSize(in)
		if err != nil || got.Int64() != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "ten", "5XB"} {
		if _, err := sdk.ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) must fail", bad)
		}
	}
	var s exampleSettings
	if err := sdk.NewSettings(map[string]any{"size-limit": 2048}).Decode(&s); err != nil || s.Size != 2048 {
		t.Fatalf("size-limit = %d, %v", s.Size, err)
	}
}

func TestExpandOwners(t *testing.T) {
	event := []byte(`{"application_scope_owners":["ann@example.com","bob@example.com",3,"ann@example.com"]}`)
	for _, tt := range []struct {
		list []string
		ev   []byte
		want []string
	}{
		{[]string{"ops@example.com", sdk.OwnerPlaceholder}, event, []string{"ops@example.com", "ann@example.com", "bob@example.com"}},
		{[]string{sdk.OwnerPlaceholder}, []byte(`{"application_scope_owners":"not a list"}`), []string{}},
		{[]string{sdk.OwnerPlaceholder, "x"}, []byte(`not json`), []string{"x"}},
		{[]string{"a", "a"}, nil, []string{"a"}},
	} {
		if got := sdk.ExpandOwners(tt.list, tt.ev); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ExpandOwners(%v, %s) = %#v, want %#v", tt.list, tt.ev, got, tt.want)
		}
	}
}

func TestDecodeUnknownAndBadTogether(t *testing.T) {
	var s exampleSettings
	err := sdk.NewSettings(map[string]any{"bogus": 1, "port": "x", "timeout": "never"}).Decode(&s)
	got := map[string]bool{}
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var se *sdk.SettingsError
		if errors.As(e, &se) {
			got[se.Key] = true
		}
	}
	walk(err)
	if !got["bogus"] || !got["port"] || !got["timeout"] || len(got) != 3 {
		t.Fatalf("keys with errors = %v (%v)", got, err)
	}
}

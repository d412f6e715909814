package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRetryErrors(t *testing.T) {
	for _, bad := range []string{"retry: 3", "retry: {attempts: 0}", "retry: {attempts: 1.5}", "retry: {initial-delay: soon}", "retry: {tries: 2}"} {
		_, err := Parse("cfg.yaml", []byte("actions:\n- name: a\n  type: test\n  enable: true\n  "+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), `cfg.yaml:5: action "a": retry`) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

// The retry key is decoded once at load, typed, and survives the trip to a
// runner (which once read `attempts` back as a JSON float and refused it).
func TestRetryTypedAndPortable(t *testing.T) {
	cfg, err := Parse("cfg.yaml", []byte("actions:\n- name: a\n  type: test\n  enable: true\n  runs-on: r1\n  retry: {attempts: 4, initial-delay: 2s, max-delay: 1}\n  url: https://example.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Retry{Attempts: 4, InitialDelay: 2 * time.Second, MaxDelay: time.Second}
	if got := cfg.Actions[0].Retry; got == nil || *got != want {
		t.Fatalf("retry = %+v, want %+v", got, want)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Actions[0].Retry; got == nil || *got != want {
		t.Fatalf("retry after JSON = %+v, want %+v", got, want)
	}
}

func TestPluginSettingsDropHostKeys(t *testing.T) {
	cfg, err := Parse("cfg.yaml", []byte("actions:\n- name: a\n  type: test\n  enable: true\n  runs-on: r1\n  retry: {attempts: 2}\n  url: https://example.com\n  token: t\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Actions[0].PluginSettings()
	if len(got) != 2 || got["url"] != "https://example.com" || got["token"] != "t" {
		t.Fatalf("plugin settings = %v, want only url and token", got)
	}
	if _, ok := cfg.Actions[0].Settings["retry"]; !ok {
		t.Fatal("the config itself must keep every key")
	}
}

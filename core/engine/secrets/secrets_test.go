package secrets

import (
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	for k, want := range map[string]bool{
		"url": true, "host": true, "user": true, "username": true, "password": true, "token": true,
		"headers": true, "instance": true, "dependency-track-api-key": true, "pagerduty-routing-key": true,
		"pagerduty-auth-token": true, "client-secret": true,
		"exec-script": false, "body-content": false, "env": false, "input-file": false, "sender": false,
	} {
		if got := Key(k); got != want {
			t.Errorf("Key(%q) = %v", k, got)
		}
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"$TOKEN", "TOKEN"},
		{"https://hooks.example.com/${HOOK_PATH}?k=${KEY}", "HOOK_PATH,KEY"},
		{`echo "$1 $? $$ ${#} $SECRET_A ${SECRET_B:-x} $SECRET_A"`, "SECRET_A,SECRET_B"},
		{"price: 5$", ""},
		{"$", ""},
	}
	for _, tt := range tests {
		if got := strings.Join(names(tt.in), ","); got != tt.want {
			t.Errorf("names(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExpand(t *testing.T) {
	t.Setenv("SECRETS_TEST_TOKEN", "tok")
	t.Setenv("SECRETS_TEST_PATH", "a/b")
	tests := []struct {
		in, want, err string
	}{
		{in: "$SECRETS_TEST_TOKEN", want: "tok"},
		{in: "https://h.example/${SECRETS_TEST_PATH}?t=${SECRETS_TEST_TOKEN}", want: "https://h.example/a/b?t=tok"},
		{in: "plain", want: "plain"},
		{in: "pa$$word", want: "pa$$word"},
		{in: "$1", want: "$1"},
		{in: "${not closed", want: "${not closed"},
		{in: "${1X}${SECRETS_TEST_TOKEN}", want: "${1X}tok"},
		{in: "$SECRETS_TEST_UNSET", err: "environment variable SECRETS_TEST_UNSET is not set"},
		{in: "x${SECRETS_TEST_UNSET}", err: "environment variable SECRETS_TEST_UNSET is not set"},
	}
	for _, tt := range tests {
		got, err := Expand(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Expand(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

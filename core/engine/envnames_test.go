package engine

import (
	"strings"
	"testing"
)

func TestEnvNames(t *testing.T) {
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
		if got := strings.Join(envNames(tt.in), ","); got != tt.want {
			t.Errorf("envNames(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

package sdkhttp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

func TestCommonVerifiesByDefault(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	for _, tt := range []struct {
		settings map[string]any
		ok       bool
	}{
		{map[string]any{}, false},
		{map[string]any{"tls-verify": true}, false},
		{map[string]any{"tls-verify": false}, true},
	} {
		var c sdkhttp.Common
		if err := sdk.NewSettings(tt.settings).Decode(&c); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := c.Client().Do(req)
		cancel()
		if resp != nil {
			resp.Body.Close()
		}
		if (err == nil) != tt.ok {
			t.Errorf("%v: err = %v", tt.settings, err)
		}
		if c.TimeoutOr(sdkhttp.DefaultTimeout) != sdkhttp.DefaultTimeout {
			t.Errorf("default timeout %s", c.TimeoutOr(sdkhttp.DefaultTimeout))
		}
	}
}

func TestRedact(t *testing.T) {
	u, _ := url.Parse("https://user:pw@hooks.example.com/services/T0/B0/secret?token=x")
	if got := sdkhttp.Redact(u); got != "https://hooks.example.com" || strings.Contains(got, "secret") {
		t.Fatalf("Redact = %q", got)
	}
}

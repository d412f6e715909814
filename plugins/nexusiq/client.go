package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

// maxAnswer bounds the part of an answer read and parsed; the rest is
// discarded.
const maxAnswer = 1 << 20

// statusError is a non-2xx answer of Nexus IQ.
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// statusOf returns the HTTP status of a statusError in err's chain, 0 if
// none.
func statusOf(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.status
	}
	return 0
}

// call sends one request to Nexus IQ at path (relative to the configured
// url) and decodes a 2xx answer, which must be a JSON object, into out.
// what describes the step for errors ("look up application x"). Facts of
// the answer go to details (status_code, retry_after, timed_out). A non-2xx
// answer is a *statusError, permanent unless sdkhttp.RetryableStatus;
// network errors and timeouts are retryable; a 2xx answer that is not the
// expected JSON is permanent.
func (a *action) call(ctx context.Context, what, method, path string, query url.Values, ctype string, body []byte, out any, details map[string]string) error {
	describe := fmt.Sprintf("%s: %s %s", what, method, a.target)
	u := *a.base
	u.Path = strings.TrimRight(u.Path, "/") + "/" + path
	u.RawPath = ""
	u.RawQuery = query.Encode()
	u.Fragment = ""
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	reqCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, method, u.String(), rd)
	if err != nil {
		return sdk.Permanentf("%s: build request: %w", describe, sdkhttp.StripURL(err))
	}
	req.SetBasicAuth(a.user, a.password)
	req.Header.Set("Accept", sdkhttp.ContentTypeJSON)
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("%s: canceled: %w", describe, context.Cause(ctx))
		case errors.Is(reqCtx.Err(), context.DeadlineExceeded):
			details["timed_out"] = "true"
			return fmt.Errorf("%s: timed out after %s", describe, a.timeout)
		}
		return fmt.Errorf("%s: %w", describe, sdkhttp.StripURL(err))
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, sdkhttp.MaxDrain)
		_ = resp.Body.Close()
	}()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	details["status_code"] = strconv.Itoa(resp.StatusCode)
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		details["retry_after"] = ra
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := &statusError{status: resp.StatusCode, err: fmt.Errorf("%s: %s%s", describe, sdkhttp.StatusText(resp.StatusCode), sdkhttp.Excerpt(answer))}
		if !sdkhttp.RetryableStatus(resp.StatusCode) {
			return sdk.Permanent(err)
		}
		return err
	}
	if err != nil {
		if errors.Is(reqCtx.Err(), context.DeadlineExceeded) {
			details["timed_out"] = "true"
			return fmt.Errorf("%s: timed out after %s reading the answer", describe, a.timeout)
		}
		return fmt.Errorf("%s: reading the answer: %w", describe, err)
	}
	if !isJSONObject(answer) {
		return sdk.Permanentf("%s: unexpected answer (status %d), not a JSON object%s", describe, resp.StatusCode, sdkhttp.Excerpt(answer))
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return sdk.Permanentf("%s: unexpected answer: %v%s", describe, err, sdkhttp.Excerpt(answer))
		}
	}
	return nil
}

func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// Close releases the action's idle connections.
func (a *action) Close() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// jsonBody encodes v without HTML escaping.
func jsonBody(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

package template

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

const (
	// DefaultFetchTimeout bounds the fetch of a url template.
	DefaultFetchTimeout = 10 * time.Second
	// MaxFetchSize is the largest url template accepted.
	MaxFetchSize = 1 << 20
	maxRedirects = 10
)

// urlUnit fetches a url template and compiles it as a body.
func urlUnit(ctx context.Context, spec Spec) (*unit, error) {
	shown := spec.URL
	u, err := url.Parse(spec.URL)
	if err == nil {
		shown = u.Redacted() // no password in errors and logs
	}
	where := "url " + strconv.Quote(shown)
	fail := func(msg string) error { return &Error{Template: spec.Name, Source: where, Message: msg} }
	if err != nil {
		return nil, fail("not a valid URL")
	}
	if err := checkScheme(u, spec.AllowInsecureURL); err != nil {
		return nil, fail(err.Error())
	}
	text, err := fetch(ctx, spec, u)
	if err != nil {
		return nil, fail(err.Error())
	}
	return userUnit(spec.Name, where, shown, text, spec.Policy)
}

// checkScheme allows https, and http when insecure is set.
func checkScheme(u *url.URL, insecure bool) error {
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && insecure:
	case u.Scheme == "http":
		return errors.New("the URL must use https (plain http is not allowed)")
	default:
		return fmt.Errorf("the URL must use https, not %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("the URL has no host")
	}
	return nil
}

// fetch GETs the template text at u.
func fetch(ctx context.Context, spec Spec, u *url.URL) (string, error) {
	timeout := spec.FetchTimeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var client http.Client
	if spec.HTTPClient != nil {
		client = *spec.HTTPClient // shares its transport
	}
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("more than %d redirects", maxRedirects)
		}
		if err := checkScheme(req.URL, spec.AllowInsecureURL); err != nil {
			return fmt.Errorf("redirected to %s: %w", req.URL.Redacted(), err)
		}
		return nil
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "text/plain, */*")
	req.Header.Set("User-Agent", "postee")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return "", fmt.Errorf("no answer within %s", timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the error's source already
		}
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("the server answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxFetchSize+1))
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return "", fmt.Errorf("no complete answer within %s", timeout)
		}
		return "", fmt.Errorf("reading the answer: %w", err)
	}
	if len(b) > MaxFetchSize {
		return "", fmt.Errorf("the template is larger than %d KiB", MaxFetchSize>>10)
	}
	return string(b), nil
}

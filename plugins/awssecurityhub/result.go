package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/smithy-go"

	"github.com/postee-dev/postee/sdk"
)

// failure is one finding Security Hub refused.
type failure struct {
	id, code, message string
}

// counts reads a BatchImportFindings answer for a batch of n findings.
// Missing members (the SDK leaves them nil) are not dereferenced.
func counts(out *securityhub.BatchImportFindingsOutput, n int) (imported, failed int, list []failure, err error) {
	if out == nil || out.SuccessCount == nil && out.FailedCount == nil {
		return 0, 0, nil, errors.New("unexpected answer: no SuccessCount or FailedCount")
	}
	for _, f := range out.FailedFindings {
		list = append(list, failure{
			id:      orDash(aws.ToString(f.Id)),
			code:    orDash(aws.ToString(f.ErrorCode)),
			message: aws.ToString(f.ErrorMessage),
		})
	}
	imported = int(aws.ToInt32(out.SuccessCount))
	failed = max(int(aws.ToInt32(out.FailedCount)), len(list))
	if out.SuccessCount == nil {
		imported = max(n-failed, 0)
	}
	return imported, failed, list, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// summary is the execution's output: the counts, then one line per refused
// finding (at most maxReported).
func summary(imported, total, batches int, region string, failed []failure) string {
	var b strings.Builder
	fmt.Fprintf(&b, "imported %d of %d findings into Security Hub (%s) in %d BatchImportFindings call", imported, total, region, batches)
	if batches != 1 {
		b.WriteString("s")
	}
	for i, f := range failed {
		if i == maxReported {
			fmt.Fprintf(&b, "\n… and %d more refused", len(failed)-maxReported)
			break
		}
		fmt.Fprintf(&b, "\nrefused %s: %s", f.id, f.code)
		if f.message != "" {
			b.WriteString(": " + f.message)
		}
	}
	return b.String()
}

// describe lists refused findings for an error message.
func describe(failed []failure) string {
	parts := make([]string, 0, 3)
	for i, f := range failed {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(failed)-3))
			break
		}
		s := f.id + ": " + f.code
		if f.message != "" {
			s += ": " + f.message
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// anyRetryable reports whether a refusal may go away later (throttling,
// an internal error), as opposed to a finding Security Hub will not take.
func anyRetryable(failed []failure) bool {
	for _, f := range failed {
		if retryableCode(f.code) {
			return true
		}
	}
	return false
}

// retryableCode reports whether an AWS error code says "later": throttling,
// limits of the request rate, internal errors, expired credentials (they
// are refreshed).
func retryableCode(code string) bool {
	c := strings.ToLower(code)
	for _, s := range []string{"throttl", "limitexceeded", "toomanyrequests", "requestlimit", "internal", "unavailable", "timeout", "expiredtoken", "requestexpired"} {
		if strings.Contains(c, s) {
			return true
		}
	}
	return false
}

// cutOff reports whether err is an answer whose body did not arrive whole
// (the connection failed or closed while it was read): a failure of the
// network whatever the status line said, worth a retry. Security Hub keeps
// one finding per Id, so a batch sent again updates rather than doubles.
func cutOff(err error) bool {
	var de *smithy.DeserializationError
	if !errors.As(err, &de) {
		return false
	}
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &ne)
}

// callError turns a failed BatchImportFindings call into the execution's
// error: throttling, 5xx, timeouts and network errors (an answer's body cut
// off included; also credentials that could not be fetched) are retryable;
// other answers (AccessDenied, InvalidInput, InvalidAccess: Security Hub not
// enabled, ...) permanent.
// A Retry-After of the answer goes to details.
func (a *action) callError(ctx context.Context, err error, i, n int, details map[string]string) error {
	where := fmt.Sprintf("BatchImportFindings (batch %d of %d)", i+1, n)
	if ctx.Err() != nil {
		return fmt.Errorf("%s: canceled: %w", where, context.Cause(ctx))
	}
	cut := cutOff(err)
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		if status = re.HTTPStatusCode(); status != 0 { // 0: no answer
			details["status_code"] = fmt.Sprint(status)
		}
		if re.Response != nil {
			if ra := re.Response.Header.Get("Retry-After"); ra != "" {
				details["retry_after"] = ra
			}
		}
		if id := re.ServiceRequestID(); id != "" {
			details["request_id"] = id
		}
	}
	code := ""
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
		msg := apiErr.ErrorMessage()
		if msg == "" {
			msg = "(no message)"
		}
		details["error_code"] = code
		err = fmt.Errorf("%s: %s%s: %s", where, statusPrefix(status), code, msg)
	} else if errors.Is(err, context.DeadlineExceeded) {
		details["timed_out"] = "true"
		return fmt.Errorf("%s: timed out after %s", where, a.timeout)
	} else {
		err = fmt.Errorf("%s: %w", where, err)
	}
	switch {
	case retryableCode(code), status == 429, status == 408, status >= 500, status == 0, cut:
		return err
	}
	return sdk.Permanent(err)
}

func statusPrefix(status int) string {
	if status == 0 {
		return ""
	}
	return fmt.Sprintf("status %d ", status)
}

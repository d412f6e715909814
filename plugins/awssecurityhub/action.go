package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/postee-dev/postee/sdk"
)

const (
	// defaultTimeout bounds one BatchImportFindings call when `timeout` is
	// not set.
	defaultTimeout = 30 * time.Second
	// sdkMaxAttempts is how often the AWS SDK itself sends one call: once.
	// postee retries a failed execution with the action's retry policy and
	// waits for Retry-After, so SDK retries would only multiply attempts.
	sdkMaxAttempts = 1
	// maxReported bounds the failed findings listed in the output.
	maxReported = 20
)

// settings are the keys of an awssecurityhub action's entry. The original
// postee had none: region and credentials come from the AWS SDK's default
// chain, as they still do when these are not set.
type settings struct {
	Region  string                `json:"region"`
	Timeout *sdk.PositiveDuration `json:"timeout"`
}

// action imports the findings of each execution. It is immutable after
// Configure (the Security Hub client is safe for concurrent use).
type action struct {
	region  string
	timeout time.Duration
	client  *securityhub.Client
}

var (
	_ sdk.Action      = (*action)(nil)
	_ sdk.EventReader = (*action)(nil)
)

func newAction() sdk.Action { return &action{} }

// ReadsEvent is false: the action sends the rendered message only
// (sdk.EventReader), so postee leaves the event out of its executions.
func (a *action) ReadsEvent() bool { return false }

// Configure loads the AWS configuration (environment and shared files; no
// network I/O: credentials are fetched when first needed).
func (a *action) Configure(ctx context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.AddWithMaxAttempts(retry.NewStandard(), sdkMaxAttempts)
		}),
	}
	if r := strings.TrimSpace(s.Region); r != "" {
		opts = append(opts, config.WithRegion(r))
	} else if s.Region != "" {
		return sdk.SettingsErrorf("region", "is blank; leave it out to use AWS_REGION or the shared config")
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("loading the AWS configuration: %w", err)
	}
	a.region = awsCfg.Region
	if a.region == "" {
		sdk.Logger().Warn("no AWS region configured: set `region`, AWS_REGION or a region in the shared config; executions fail until then", "action", cfg.Name)
	}
	a.timeout = defaultTimeout
	if s.Timeout != nil {
		a.timeout = s.Timeout.D()
	}
	a.client = securityhub.NewFromConfig(awsCfg)
	return nil
}

// Execute imports the description's findings in batches of at most 100.
func (a *action) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	findings, err := parseFindings(ex.Message.Description)
	if err != nil {
		return sdk.Result{}, sdk.Permanent(err)
	}
	res := sdk.Result{Details: map[string]string{"findings": strconv.Itoa(len(findings))}}
	if len(findings) == 0 {
		res.Output = "no findings in the message: nothing imported"
		return res, nil
	}
	if a.region == "" {
		return res, sdk.Permanentf("no AWS region: set the action's region, AWS_REGION or a region in the shared AWS config")
	}
	res.Details["region"] = a.region
	parts := batches(findings, maxBatch)
	res.Details["batches"] = strconv.Itoa(len(parts))

	var (
		imported, failedCount int
		failed                []failure
	)
	report := func() {
		res.Details["success_count"] = strconv.Itoa(imported)
		res.Details["failed_count"] = strconv.Itoa(failedCount)
		res.Output = summary(imported, len(findings), len(parts), a.region, failed)
		if len(failed) > 0 {
			ids := make([]string, 0, min(len(failed), maxReported))
			for _, f := range failed[:min(len(failed), maxReported)] {
				ids = append(ids, f.id)
			}
			res.Details["failed_ids"] = strings.Join(ids, ",")
		}
	}
	for i, batch := range parts {
		out, err := a.importBatch(ctx, batch)
		if err != nil {
			res.Details["batches_imported"] = strconv.Itoa(i)
			report()
			return res, a.callError(ctx, err, i, len(parts), res.Details)
		}
		ok, bad, list, err := counts(out, len(batch))
		if err != nil {
			report()
			return res, sdk.Permanentf("BatchImportFindings (batch %d of %d): %w", i+1, len(parts), err)
		}
		imported += ok
		failedCount += bad
		failed = append(failed, list...)
	}
	report()
	for _, f := range failed {
		sdk.Logger().Warn("Security Hub refused a finding", "action", ex.Action, "id", f.id, "code", f.code, "message", f.message)
	}
	if imported == 0 && failedCount > 0 {
		err := fmt.Errorf("security hub refused all %d findings: %s", failedCount, describe(failed))
		if !anyRetryable(failed) {
			err = sdk.Permanent(err)
		}
		return res, err
	}
	return res, nil
}

// importBatch sends one BatchImportFindings call whose body is the batch's
// findings exactly as the template wrote them.
func (a *action) importBatch(ctx context.Context, batch []finding) (*securityhub.BatchImportFindingsOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	return a.client.BatchImportFindings(ctx, &securityhub.BatchImportFindingsInput{}, rawBody(requestBody(batch)))
}

// requestStream is the request body as smithy-go gets it: a seekable
// reader without WriteTo. smithy-go closes the body as soon as the answer's
// status line is in, which can be before net/http has finished its last
// check of the body for extra bytes. That check goes through WriteTo when
// the body has one, and smithy-go's wrapper answers a closed body's WriteTo
// with io.EOF as an error: the write then fails and net/http closes the
// connection while the answer's body is being read ("use of closed network
// connection" on a 200). A closed wrapper's Read answers a plain end of
// stream instead.
type requestStream struct{ io.ReadSeeker }

func newRequestStream(body []byte) io.ReadSeeker { return requestStream{bytes.NewReader(body)} }

// rawBody makes the call send body instead of the SDK's serialization of
// the (empty) typed input. The SDK's typed model would drop every field of
// a finding it does not know and rewrite the rest; the template's findings
// are sent as they are. The SDK's client-side check of the typed input is
// removed with it: Security Hub checks the findings (InvalidInputException
// for the call, or per finding in FailedFindings). Signing, endpoint
// resolution and error decoding are the SDK's as usual.
func rawBody(body []byte) func(*securityhub.Options) {
	return func(o *securityhub.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			if _, err := stack.Initialize.Remove("OperationInputValidation"); err != nil {
				return err
			}
			return stack.Serialize.Add(middleware.SerializeMiddlewareFunc("PosteeFindingsBody",
				func(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
					req, ok := in.Request.(*smithyhttp.Request)
					if !ok {
						return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("unexpected request type %T", in.Request)
					}
					r, err := req.SetStream(newRequestStream(body))
					if err != nil {
						return middleware.SerializeOutput{}, middleware.Metadata{}, err
					}
					in.Request = r
					return next.HandleSerialize(ctx, in)
				}), middleware.After)
		})
	}
}

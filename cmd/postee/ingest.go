package main

import (
	"github.com/spf13/pflag"

	"github.com/postee-dev/postee/core/webhook"
)

// ingestOptions are the flags that protect the webhook and the management
// endpoints.
type ingestOptions struct {
	token       string
	clientCA    string
	adminAddr   string
	maxInflight int64
}

func (o *ingestOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.token, "ingest-token", "", "require Authorization: Bearer <token> on event requests (env POSTEE_INGEST_TOKEN); off when empty")
	f.StringVar(&o.clientCA, "tls-client-ca", "", "CA (PEM file) of producers' client certificates: the HTTPS listener verifies them and events need one (or the ingest token)")
	f.StringVar(&o.adminAddr, "admin-url", "", "serve the management endpoints (/executions, /events, /metrics, /dead-letters, /reload) on this address only, e.g. 127.0.0.1:8090")
	f.Int64Var(&o.maxInflight, "max-inflight-bytes", webhook.DefaultMaxInflightBytes, "bytes of event bodies read and queued at once, over all requests (more: 503)")
}

func (o *ingestOptions) applyEnv() {
	if v, ok := env("POSTEE_INGEST_TOKEN"); ok && v != "" {
		o.token = v
	}
	if v, ok := env("POSTEE_ADMIN_URL"); ok && v != "" {
		o.adminAddr = v
	}
}

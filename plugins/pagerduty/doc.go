// Command postee-action-pagerduty is the postee action plugin of type
// "pagerduty": it triggers one PagerDuty alert per event through the Events
// API v2 (POST <url>/v2/enqueue), authenticated by the integration's routing
// key.
//
// The summary is the message title (cut to PagerDuty's 1024 characters), the
// severity comes from the template's result_severity, the description goes
// into custom_details and the message URL into links. The dedup_key is
// derived from the event and the route, so a retried or re-sent execution
// does not page twice.
//
// A 2xx answer with status "success" is success; 429, 5xx and network errors
// are retryable; 400 ("invalid event") and other answers are permanent. See
// README.md.
package main

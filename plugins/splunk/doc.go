// Command postee-action-splunk is the postee action plugin of type "splunk":
// it sends every event to a Splunk HTTP Event Collector (HEC) as a JSON
// event, the raw event as `event` and the rendered title, severity and URL
// as indexed fields.
//
// An event whose HEC payload is larger than `size-limit` is split along its
// largest lists into several HEC events, packed into posts of at most
// `size-limit` bytes. 429, 5xx and network errors are retryable, other
// answers permanent with HEC's own text and code. See README.md.
package main

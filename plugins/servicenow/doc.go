// Command postee-action-servicenow is the postee action plugin of type
// "servicenow" (written `serviceNow` in configs): it creates a record, by
// default an incident, in a ServiceNow table through the Table API, with
// Basic authentication.
//
// The record is the object the bundled servicenow templates render, or,
// for other templates, the rendered message mapped to incident fields as
// the original postee did. The created record's number and sys_id are in
// the result. 429, 5xx and network errors are retryable; other answers
// are permanent, with ServiceNow's error message and detail. See README.md.
package main

// Command postee-action-jira is the postee action plugin of type "jira": it
// creates one Jira issue per event, on Jira Cloud or Jira Server/Data
// Center, through the REST API v2. The summary is the rendered title, the
// description the rendered result (Jira wiki markup, e.g. from the bundled
// postee.trivy.jira template); project, issue type, priority, assignee
// (scope owners included), labels, versions, sprint and custom fields come
// from the settings, typed from the create metadata of the project, which
// is fetched once and kept for ten minutes.
//
// A created issue is success; Jira's 400 and other 4xx answers are
// permanent, network errors, 429 and 5xx are retried, and a retry first
// looks for an issue an earlier attempt created. See README.md.
package main

// Command postee-action-opsgenie is the postee action plugin of type
// "opsgenie": it creates one Opsgenie alert per event with the Alert API v2
// (POST <url>/v2/alerts, Authorization: GenieKey <token>).
//
// The alert's message is the message title; its description, alias, entity,
// priority, tags and details come from the description rendered by the
// template (an object, as postee.vuls.opsgenie renders) or, for any other
// description, from its text and the action's settings. Every field is cut
// to Opsgenie's limits.
//
// A 2xx answer is success (Opsgenie processes the request asynchronously and
// answers 202); 429, 5xx and network errors are retryable; other answers are
// permanent, with Opsgenie's message. See README.md.
package main

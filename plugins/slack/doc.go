// Command postee-action-slack is the postee action plugin of type "slack":
// it posts the rendered message of every event to a Slack incoming webhook.
//
// A description that is Block Kit (an array of blocks, as the bundled Slack
// templates render, one block, or a complete message object) is sent as it
// is; any other description is sent as message text after the title, with
// Slack's control characters escaped. Content over Slack's limits (50 blocks
// per message, 3000 characters per section text, 40 000 characters per
// message text) is split over several messages, sent in order; a retry of
// an execution that failed part-way resumes at the part that failed.
//
// Any 2xx answer is success; 429, 5xx, network errors and timeouts are
// retryable, other answers permanent, with Slack's error text. See
// README.md.
package main

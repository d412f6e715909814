// Command postee-action-email is the postee action plugin of type "email":
// it mails the rendered message (subject: the title; body: the description
// as HTML with a plain-text alternative) to the configured recipients,
// through an SMTP server (port 587 with STARTTLS when offered, 465 with
// implicit TLS) or, with use-mx, directly to each recipient domain's MX
// servers, one copy per recipient.
//
// SMTP 4xx replies, network errors and timeouts are retryable; 5xx replies
// are permanent. A retry of an execution does not send again to the
// recipients that already have the message. See README.md.
package main

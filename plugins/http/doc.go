// Command postee-action-http is the postee action plugin of type "http": it
// sends one HTTP request per event to a configured URL, with configured
// method and headers. The body is the rendered message description, or a
// configured body (inline or from a file) in which `event.input.<path>`
// placeholders are replaced with values of the incoming event.
//
// Any 2xx answer is success; 5xx, 408, 425, 429 and network errors are
// retryable, other answers permanent. See README.md.
package main

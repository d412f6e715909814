// Command postee-action-webhook is the postee action plugin of type
// "webhook": it POSTs the rendered message description of every event to a
// configured URL, as application/json when the description is valid JSON and
// as text/plain otherwise.
//
// Any 2xx answer is success; 5xx, 408, 425, 429, network errors and timeouts
// are retryable, other answers permanent. Redirects are followed only when
// they keep the POST and its body (307, 308). See README.md.
package main

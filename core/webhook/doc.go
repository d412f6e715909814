// Package webhook is postee's HTTP front door, compatible with the existing
// Postee: POST / and POST /scan accept an event for every route, POST
// /tenant/{route} for one route, GET /ping answers liveness probes. Bodies
// are bounded (413 past the limit), must be one JSON object (400 otherwise),
// and a full queue answers 503 with Retry-After rather than blocking.
package webhook

// Command postee-action-dependencytrack is the postee action plugin of type
// "dependencytrack": it uploads the CycloneDX BOM rendered by the route's
// template (postee.trivyoperator.dependencytrack or postee.vuls.cyclondx) to
// a Dependency-Track API server with PUT /api/v1/bom, into the project named
// after the scanned image (created when missing).
//
// 2xx is success (the processing token is reported); 429, 5xx and network
// errors are retryable; other answers are permanent. See README.md.
package main

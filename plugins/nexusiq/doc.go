// Command postee-action-nexusiq is the postee action plugin of type
// "nexusiq" (configs write `type: nexusIq`): it submits the CycloneDX SBOM
// rendered by the route's template (postee.vuls.cyclondx) to a Sonatype
// Nexus IQ server for evaluation, in the application named after the scanned
// image, which it creates in the configured organization when it does not
// exist. Application ids are looked up once per application and cached.
//
// 2xx is success; 429, 5xx and network errors are retryable; other answers
// are permanent. See README.md.
package main

// Package template compiles the templates that turn an event into the
// message actions send (sdk.Message), and renders events with them.
//
// A template is a Rego package defining `title` and `result` (the message
// description) and optionally `url`, `date`, `severity`, `summary`,
// `category`, `subcategory`, `assignedTo`, `assignedGroup` (or their newer
// names `result_url` ... `result_assigned_group`), and `aggregation_pkg`. A
// string value is used as it is, any other value as compact JSON. It comes
// from the bundled library (rego-package, see Packages), a user file
// (rego-file), inline Rego (body) or Rego fetched once from an https URL
// (url; see Spec). User Rego may use the old v0 syntax: it is compiled as
// v1 first and, when that fails, as v0. It is compiled together with the
// library's helper packages (postee.lib.*) it refers to. A library
// template is compiled with the library files its references reach, not
// the whole library (library.go). Every template can call four
// builtins of postee: jsonformat(x), which returns x as indented JSON (two
// spaces, keys sorted, HTML characters not escaped), htmlescape(s),
// which replaces & < > " ' by HTML entities (also available as
// postee.lib.html.escape), htmlrow(cells, link), which writes an HTML
// table row of escaped cells, the first a link to link when it is an
// http(s) URL (in Go because rows written in Rego were most of the time of
// a long table), and
// vulnlist(report, format), which returns the
// vulnerabilities of an Aqua, Trivy or Trivy Operator report in the shape
// of postee.lib.vuls.vulnerabilities (what that rule is made of; in Go
// because building those objects in Rego was most of the time of a large
// report).
//
// A legacy-scan-renderer template (html, slack or jira) is a Go renderer
// of Aqua image scans instead of Rego; Render and Aggregate work the same
// for it.
//
// The bundled library reads the reports of Aqua, Trivy and Trivy Operator
// (postee.lib.vuls puts them in one shape) and Tracee findings
// (postee.lib.tracee), and writes HTML, Slack Block Kit, Jira wiki markup,
// CycloneDX, Opsgenie alerts and ServiceNow records; every package says in
// its comment what it reads and writes. Event text is always escaped for
// the markup it lands in, and only http(s) URLs become links.
//
// Aggregation: when a route collects several events into one message, the
// engine renders each event and calls Aggregate with the messages; the
// template's aggregation_pkg gets them as input (a list of {"title",
// "description"}, descriptions that are JSON parsed) and makes the combined
// message.
//
// All compilation (and the fetch of a url template) happens in Compile.
// Render evaluates only the rules the message needs, on the value returned
// by Input, which is computed once per event and shared by every template.
package template

// Package template compiles the Rego templates that turn an event into the
// message actions send (sdk.Message), and renders events with them.
//
// A template is a Rego package defining `title` and `result` (the message
// description) and optionally `url`, `date`, `severity`, `summary`,
// `category`, `subcategory`, `assignedTo`, `assignedGroup` (or their newer
// names `result_url` ... `result_assigned_group`), and `aggregation_pkg`. A
// string value is used as it is, any other value as compact JSON. It comes
// from the bundled library (rego-package, see Packages), a user file
// (rego-file) or inline Rego (body). User Rego may use the old v0 syntax:
// it is compiled as v1 first and, when that fails, as v0. It is compiled
// together with the library's helper packages (postee.lib.*). Every
// template can call two builtins of postee: jsonformat(x), which returns x as
// indented JSON (two spaces, keys sorted, HTML characters not escaped), and
// htmlescape(s), which replaces & < > " ' by HTML entities (also available
// as postee.lib.html.escape).
//
// All compilation happens in Compile. Render evaluates only the rules the
// message needs, on the value returned by Input, which is computed once per
// event and shared by every template.
package template

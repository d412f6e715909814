// Package filters holds the Rego filter files postee ships for routes'
// `input-files`, under the names the original postee used:
// Allow-Image-Name.rego, Ignore-Image-Name.rego, Allow-Registry.rego,
// Ignore-Registry.rego, Policy-Min-Vulnerability.rego,
// Policy-Only-Fix-Available.rego, Policy-Related-Features.rego, and the Tracee
// signature sets "Initial Access", "Credential Access", "Privilege
// Escalation", "Defense Evasion", "Persistence" and "Tracee Default Set".
//
// Every file is a commented module of package postee defining allow, with its
// settings (image names, registries, severities, signature IDs) at the top
// for the user to edit. On disk each file ends in ".rego" (also the Tracee
// sets, e.g. "Initial Access.rego"): postee tries "<name>.rego" when
// "<name>" does not exist, so both spellings of a name work in input-files,
// and Bundled accepts both too.
//
// The canonical files are in bundled/ and are embedded in the binary. The
// repository's rego-filters/ folder (the default REGO_FILTERS_PATH,
// ./rego-filters) holds byte-identical copies for users to edit; a test fails
// when they differ. After editing a file in bundled/, copy them over with
//
//	go generate ./core/filters
//
// (or by hand: cp core/filters/bundled/*.rego rego-filters/).
package filters

//go:generate sh -c "cp bundled/*.rego ../../rego-filters/"

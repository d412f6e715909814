// Package config loads postee's YAML configuration: the format of the
// existing Postee (routes, templates, actions), decoded strictly. Every error
// names the file and line and the route, template or action it is about, and
// all problems of a file are reported together.
//
// Loading does no I/O beyond reading the file: compiling Rego, reading
// filter files and configuring plugins happen later, in the engine, and
// their errors point back here through the Pos of each entry.
package config

// Package extplugin proves that a third party can write an action plugin in
// its own module, as docs/writing-actions.md describes: it creates a module
// outside the repository from testdata/greet (the doc's code, kept byte for
// byte in step with it), runs the author's sdktest-based tests, builds the
// plugin and postee, and checks that postee runs the plugin's action on an
// event and reports a bad setting with its file, line and key.
package extplugin

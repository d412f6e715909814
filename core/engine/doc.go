// Package engine turns a loaded config into a running pipeline: it compiles
// every route and template once per config load, has the plugin host start
// and configure the actions this node runs, and processes accepted events on
// a bounded queue with a fixed pool of workers. Each event is parsed once;
// every route and template is evaluated on that one value; the actions of a
// matching route run concurrently, or one after another with
// serialize-actions.
package engine

// Command postee-action-kubernetes is the postee action plugin of type
// "kubernetes": for every event it lists the pods of one namespace that match
// a label selector and adds or replaces labels and annotations on each of
// them with one JSON merge patch per pod. Selector values, label values and
// annotation values may hold `event.input.<path>` placeholders, filled from
// the incoming event.
//
// An empty or unparsable selector is a config error (the existing postee
// relabelled every pod of the namespace then). API answers 429 and 5xx and
// network errors are retryable; other API errors are permanent. See
// README.md.
package main

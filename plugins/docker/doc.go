// Command postee-action-docker is the postee action plugin of type
// "docker": for every event it runs a container from a configured image
// through the Docker Engine API (DOCKER_HOST, or the local socket), with the
// rendered description in POSTEE_EVENT, waits for it to exit, keeps its
// output and removes it.
//
// Exit code 0 is success; another exit code is a permanent error. The
// image is pulled only when it is missing (or always, if configured). A
// timeout kills the container (retryable), and an unreachable daemon is
// retryable. See README.md.
package main

package postee.test.ghcr

default allow := false

allow if input.registry == "ghcr.io"

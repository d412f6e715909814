package postee.test.quay

default allow := false

allow if input.registry == "quay.io"

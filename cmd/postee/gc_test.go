package main

import (
	"testing"

	"github.com/postee-dev/postee/sdk/protocol"
)

func TestMemoryLimitByRole(t *testing.T) {
	if got := memoryLimit(false); got != protocol.PosteeMemoryLimit || got > 80<<20 {
		t.Errorf("standalone or runner: limit %d, want %d (at most 80 MiB)", got, protocol.PosteeMemoryLimit)
	}
	if got := memoryLimit(true); got != protocol.ControllerMemoryLimit || got > 160<<20 {
		t.Errorf("controller: limit %d, want %d (at most 160 MiB)", got, protocol.ControllerMemoryLimit)
	}
}

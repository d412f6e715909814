//go:build !unix

package protocol

import (
	"errors"
	"os"
)

// socketPair: none on this platform (plugins use the gRPC stream).
func socketPair() (host, plugin *os.File, err error) { return nil, nil, nil }

func readNow(*os.File, []byte) (int, error) {
	return 0, errors.New("no executions socket on this platform")
}

package main

import (
	"fmt"

	"github.com/postee-dev/postee/core/pluginhost"
)

// checksums reads the --plugin-checksum flags: type → sha256.
func (o *options) checksums() (map[string][]byte, error) {
	if len(o.pluginChecksums) == 0 {
		return nil, nil
	}
	out := map[string][]byte{}
	for _, f := range o.pluginChecksums {
		typ, sum, err := pluginhost.ParseChecksumFlag(f)
		if err != nil {
			return nil, fmt.Errorf("--plugin-checksum %w", err)
		}
		if _, dup := out[typ]; dup {
			return nil, fmt.Errorf("--plugin-checksum: %s is pinned twice", typ)
		}
		out[typ] = sum
	}
	return out, nil
}

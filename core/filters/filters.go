package filters

import (
	"embed"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
)

//go:embed bundled/*.rego
var bundled embed.FS

// ext is the extension every bundled file has on disk.
const ext = ".rego"

var (
	loadOnce sync.Once
	sources  map[string]string // file name (with .rego) -> content
	names    []string          // sorted file names
)

func load() {
	entries, err := fs.ReadDir(bundled, "bundled")
	if err != nil {
		panic("filters: " + err.Error()) // embedded: cannot happen
	}
	sources = make(map[string]string, len(entries))
	for _, e := range entries {
		data, err := fs.ReadFile(bundled, path.Join("bundled", e.Name()))
		if err != nil {
			panic("filters: " + err.Error())
		}
		sources[e.Name()] = string(data)
		names = append(names, e.Name())
	}
	sort.Strings(names)
}

// Bundled returns the source of the bundled filter file called name, as a
// route's input-files would write it: with or without the ".rego" extension
// ("Initial Access" and "Initial Access.rego" are the same file). Names are
// case-sensitive, as file names are.
func Bundled(name string) (source string, ok bool) {
	loadOnce.Do(load)
	if src, ok := sources[name]; ok {
		return src, true
	}
	if !strings.HasSuffix(name, ext) {
		src, ok := sources[name+ext]
		return src, ok
	}
	return "", false
}

// Names returns the file names of the bundled filters, as on disk (each ends
// in ".rego"), sorted. The caller may modify the slice.
func Names() []string {
	loadOnce.Do(load)
	return append([]string(nil), names...)
}

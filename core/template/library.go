package template

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/internal/suggest"
)

// The bundled template library: one package per file, grouped in
// directories (library/rawmessage/json.rego is postee.rawmessage.json).
// Packages under postee.lib (library/lib) are helpers compiled with every
// template; they are not templates themselves.
//
//go:embed library
var libraryFS embed.FS

const (
	libraryDir    = "library"
	helperPackage = "postee.lib"
)

type library struct {
	// compiler has every module of the library, compiled once and shared
	// (read only) by the rego-package templates.
	compiler *ast.Compiler
	// helpers are the parsed postee.lib modules by file name, to be copied
	// into the compilation of user templates.
	helpers map[string]*ast.Module
	// packages maps template package names to their data refs.
	packages map[string]ast.Ref
	names    []string // sorted keys of packages
	// modules are the parsed modules by file name, before compilation,
	// for the compilation of a user template directory.
	modules map[string]*ast.Module
}

var (
	libOnce sync.Once
	lib     *library
	libErr  error
)

// loadLibrary parses and compiles the bundled library, once.
func loadLibrary() (*library, error) {
	libOnce.Do(func() { lib, libErr = readLibrary(libraryFS) })
	return lib, libErr
}

func readLibrary(fsys fs.FS) (*library, error) {
	l := &library{helpers: map[string]*ast.Module{}, packages: map[string]ast.Ref{}, modules: map[string]*ast.Module{}}
	modules := map[string]*ast.Module{}
	err := fs.WalkDir(fsys, libraryDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".rego" {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		mod, err := ast.ParseModuleWithOpts(p, string(b), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return err
		}
		name := packageName(mod.Package.Path)
		if name == helperPackage || strings.HasPrefix(name, helperPackage+".") {
			l.helpers[p] = mod.Copy()
		} else {
			l.packages[name] = mod.Package.Path
		}
		modules[p] = mod
		l.modules[p] = mod.Copy()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bundled template library: %w", err)
	}
	c := newCompiler(nil)
	c.Compile(modules)
	if c.Failed() {
		return nil, fmt.Errorf("bundled template library: %w", c.Errors)
	}
	l.compiler = c
	for name := range l.packages {
		l.names = append(l.names, name)
	}
	slices.Sort(l.names)
	return l, nil
}

// Packages returns the names of the bundled library's template packages,
// sorted.
func Packages() []string {
	l, err := loadLibrary()
	if err != nil {
		return nil
	}
	return slices.Clone(l.names)
}

func libraryUnit(template, pkg string) (*unit, error) {
	l, err := loadLibrary()
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", template, err)
	}
	where := "rego-package " + strconv.Quote(pkg)
	ref, ok := l.packages[pkg]
	if !ok {
		return nil, &Error{Template: template, Source: where, Message: unknownPackage(pkg, l.names)}
	}
	return &unit{compiler: l.compiler, pkg: ref, sources: map[string]string{"": where}}, nil
}

// unknownPackage says that pkg is not in the library, with the names that
// look like it or else all of them.
func unknownPackage(pkg string, names []string) string {
	var close []string
	for _, n := range names {
		if isClose(pkg, n) {
			close = append(close, n)
		}
	}
	slices.SortStableFunc(close, func(a, b string) int { return suggest.Distance(pkg, a) - suggest.Distance(pkg, b) })
	for i, n := range close {
		close[i] = strconv.Quote(n)
	}
	if len(close) > 0 {
		return "no such package in the bundled library; did you mean " + strings.Join(close, " or ") + "?"
	}
	return "no such package in the bundled library; it has " + strings.Join(names, ", ")
}

// isClose reports whether a user probably meant name when writing s.
func isClose(s, name string) bool {
	ls, ln := strings.ToLower(s), strings.ToLower(name)
	if strings.Contains(ln, ls) || strings.Contains(ls, ln) {
		return true
	}
	return suggest.Distance(ls, ln) <= max(2, len(ln)/5)
}

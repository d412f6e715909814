package template

import (
	"embed"
	"fmt"
	"io/fs"
	"maps"
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
// Packages under postee.lib (library/lib) are helpers for the templates;
// they are not templates themselves.
//
// A file is parsed the first time a template needs it, and a template is
// compiled with only the files it refers to (its closure: the packages its
// data references reach, transitively), so that a config using the raw
// message template does not pay for the Slack and Jira helpers. The engine
// passes every library package of a config (Spec.LibraryPackages), so the
// config's templates share one compilation.
//
//go:embed library
var libraryFS embed.FS

const (
	libraryDir    = "library"
	helperPackage = "postee.lib"
	// maxCompiled is how many compiled closures the library keeps for
	// reuse: a reload of the same config compiles nothing again.
	maxCompiled = 4
)

type library struct {
	fsys fs.FS
	// files maps every package (helpers too) to its file, from the
	// file's path; a parsed file must declare that package.
	files map[string]string
	// packages maps template package names to their data refs.
	packages map[string]ast.Ref
	names    []string // sorted keys of packages

	mu sync.Mutex
	// parsed are the modules as parsed, by file; a compilation gets
	// copies (the compiler rewrites modules in place).
	parsed map[string]*ast.Module
	// compiled are the latest compilations, newest last.
	compiled []compiledClosure
}

type compiledClosure struct {
	key      string // its files, sorted, one per line
	compiler *ast.Compiler
}

var (
	libOnce sync.Once
	lib     *library
	libErr  error
)

// loadLibrary lists the bundled library, once; nothing is parsed yet.
func loadLibrary() (*library, error) {
	libOnce.Do(func() { lib, libErr = listLibrary(libraryFS) })
	return lib, libErr
}

func listLibrary(fsys fs.FS) (*library, error) {
	l := &library{fsys: fsys, files: map[string]string{}, packages: map[string]ast.Ref{}, parsed: map[string]*ast.Module{}}
	err := fs.WalkDir(fsys, libraryDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".rego" {
			return err
		}
		name := "postee." + strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(p, libraryDir+"/"), ".rego"), "/", ".")
		ref, err := ast.ParseRef("data." + name)
		if err != nil {
			return fmt.Errorf("%s: the file's path is not a package name: %w", p, err)
		}
		l.files[name] = p
		if !isHelper(name) {
			l.packages[name] = ref
			l.names = append(l.names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bundled template library: %w", err)
	}
	slices.Sort(l.names)
	return l, nil
}

// parse returns the module of file (l.mu held), parsed once.
func (l *library) parse(file string) (*ast.Module, error) {
	if m := l.parsed[file]; m != nil {
		return m, nil
	}
	b, err := fs.ReadFile(l.fsys, file)
	if err != nil {
		return nil, fmt.Errorf("bundled template library: %w", err)
	}
	m, err := ast.ParseModuleWithOpts(file, string(b), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("bundled template library: %w", err)
	}
	name := packageName(m.Package.Path)
	if l.files[name] != file {
		return nil, fmt.Errorf("bundled template library: %s declares package %s; its path makes it %s", file, name, packageOfFile(l.files, file))
	}
	l.parsed[file] = m
	return m, nil
}

func packageOfFile(files map[string]string, file string) string {
	for name, f := range files {
		if f == file {
			return name
		}
	}
	return "?"
}

// closure returns, sorted, the files of the packages allow accepts among
// those paths name (a package, its subpackages such as an aggregation
// package, or a document holding it) and, transitively, among those their
// data references name (l.mu held).
func (l *library) closure(paths []string, allow func(pkg string) bool) ([]string, error) {
	need := map[string]bool{}
	var queue []string
	reach := func(path string) {
		for name, file := range l.files {
			if !need[file] && allow(name) && (path == "" || name == path || strings.HasPrefix(name, path+".") || strings.HasPrefix(path, name+".")) {
				need[file] = true
				queue = append(queue, file)
			}
		}
	}
	for _, p := range paths {
		reach(p)
	}
	for len(queue) > 0 {
		file := queue[0]
		queue = queue[1:]
		m, err := l.parse(file)
		if err != nil {
			return nil, err
		}
		for _, p := range dataPaths(m) {
			reach(p)
		}
	}
	return slices.Sorted(maps.Keys(need)), nil
}

// dataPaths are the paths of m's references into data.
func dataPaths(m *ast.Module) []string {
	var paths []string
	ast.WalkRefs(m, func(r ast.Ref) bool {
		if p, ok := dataPath(r); ok {
			paths = append(paths, p)
		}
		return false
	})
	return paths
}

func isHelper(pkg string) bool {
	return pkg == helperPackage || strings.HasPrefix(pkg, helperPackage+".")
}

func anyPackage(string) bool { return true }

// dataPath is the constant dotted path of a reference into data ("" for
// data itself or a data reference whose first key is computed).
func dataPath(r ast.Ref) (string, bool) {
	if len(r) == 0 || !r[0].Equal(ast.DefaultRootDocument) {
		return "", false
	}
	var parts []string
	for _, t := range r[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			break
		}
		parts = append(parts, string(s))
	}
	return strings.Join(parts, "."), true
}

// compile returns a compiler holding pkgs and everything they refer to,
// reusing a recent compilation of the same files.
func (l *library) compile(pkgs []string) (*ast.Compiler, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	files, err := l.closure(pkgs, anyPackage)
	if err != nil {
		return nil, err
	}
	key := strings.Join(files, "\n")
	for i, c := range l.compiled {
		if c.key == key {
			l.compiled = append(append(l.compiled[:i:i], l.compiled[i+1:]...), c)
			return c.compiler, nil
		}
	}
	mods := make(map[string]*ast.Module, len(files))
	for _, f := range files {
		mods[f] = l.parsed[f].Copy()
	}
	c := newCompiler(nil)
	c.Compile(mods)
	if c.Failed() {
		return nil, fmt.Errorf("bundled template library: %w", c.Errors)
	}
	if len(l.compiled) == maxCompiled {
		l.compiled = slices.Delete(l.compiled, 0, 1)
	}
	l.compiled = append(l.compiled, compiledClosure{key: key, compiler: c})
	return c, nil
}

// all returns every module of the library as parsed, by file, to be
// copied (for the user templates, compiled with the library).
func (l *library) all() (map[string]*ast.Module, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]*ast.Module, len(l.files))
	for _, file := range l.files {
		m, err := l.parse(file)
		if err != nil {
			return nil, err
		}
		out[file] = m
	}
	return out, nil
}

// helpersFor returns copies of the helper modules mod refers to,
// transitively, by file.
func (l *library) helpersFor(mod *ast.Module) (map[string]*ast.Module, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	files, err := l.closure(dataPaths(mod), isHelper)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*ast.Module, len(files)+1)
	for _, f := range files {
		out[f] = l.parsed[f].Copy() // the compiler rewrites modules in place
	}
	return out, nil
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

// libraryUnit is template's unit for the library package pkg, compiled
// together with also (the config's other library packages).
func libraryUnit(template, pkg string, also []string) (*unit, error) {
	l, err := loadLibrary()
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", template, err)
	}
	where := "rego-package " + strconv.Quote(pkg)
	ref, ok := l.packages[pkg]
	if !ok {
		return nil, &Error{Template: template, Source: where, Message: unknownPackage(pkg, l.names)}
	}
	c, err := l.compile(append(slices.Clip(also), pkg))
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", template, err)
	}
	return &unit{compiler: c, pkg: ref, sources: map[string]string{"": where}}, nil
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

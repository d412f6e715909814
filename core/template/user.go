package template

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/internal/regoeval"
)

// DefaultUserDir is where the user's own template files are, as in the
// existing Postee: ./rego-templates, relative to the working directory.
const DefaultUserDir = "./rego-templates"

// UserTemplates are the template packages of the user's directory of Rego
// files (every .rego file under it, searched recursively; OPA unit tests,
// *_test.rego, are left out). A template's rego-package finds them beside
// the bundled library; a user package of a bundled package's name replaces
// it. Files that do not parse or compile are left out (see Skipped); a
// template that names one of their packages fails with their error.
type UserTemplates struct {
	// Dir is the directory that was read.
	Dir string
	// Replaced lists the bundled packages a user file replaces, sorted.
	Replaced []string
	// Skipped are the files left out, each error naming the file and line.
	Skipped []error

	compiler *ast.Compiler
	caps     *ast.Capabilities  // what compiler was compiled with
	packages map[string]ast.Ref // user packages → data refs
	files    map[string]string  // module file name → where, for errors
	broken   map[string]error   // packages of skipped files → their error
	count    int                // files loaded
}

// Files is how many files were loaded.
func (u *UserTemplates) Files() int { return u.count }

// Packages lists the user's template packages, sorted.
func (u *UserTemplates) Packages() []string {
	return slices.Sorted(maps.Keys(u.packages))
}

// LoadUserTemplates reads every .rego file under dir. A dir that does not
// exist gives nil and no error: the directory is optional. The files are
// compiled with policy's capabilities (the default policy when none).
func LoadUserTemplates(dir string, policy ...regoeval.Policy) (*UserTemplates, error) {
	if dir == "" {
		return nil, nil
	}
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("template directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("template directory %s is not a directory", dir)
	}
	lib, err := loadLibrary()
	if err != nil {
		return nil, err
	}
	u := &UserTemplates{Dir: dir, packages: map[string]ast.Ref{}, files: map[string]string{}, broken: map[string]error{}}
	var pol regoeval.Policy
	if len(policy) > 0 {
		pol = policy[0]
	}
	u.caps = pol.Capabilities()
	user := map[string]*ast.Module{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || filepath.Ext(path) != ".rego" || strings.HasSuffix(path, "_test.rego") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		name := "user:" + path // never a library file name
		u.files[name] = "file " + strconv.Quote(path)
		mod, err := parseEither(name, string(b))
		if err != nil {
			u.Skipped = append(u.Skipped, fmt.Errorf("%s: %s", path, firstMessage(err)))
			return nil
		}
		user[name] = mod
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("template directory: %w", err)
	}
	if len(user) == 0 {
		return u, nil
	}
	// Compile the library with the user's files; a file that does not
	// compile is left out and the rest compiled again.
	libMods, err := lib.all()
	if err != nil {
		return nil, err
	}
	for round := 0; ; round++ {
		pkgs := map[string]bool{}
		for _, m := range user {
			pkgs[packageName(m.Package.Path)] = true
		}
		mods := map[string]*ast.Module{}
		for name, m := range libMods {
			if !pkgs[packageName(m.Package.Path)] {
				mods[name] = m.Copy()
			}
		}
		for name, m := range user {
			mods[name] = m.Copy()
		}
		c := newCompiler(u.caps)
		c.Compile(mods)
		if !c.Failed() {
			u.compiler = c
			break
		}
		bad := map[string][]string{}
		for _, e := range c.Errors {
			if e.Location != nil && user[e.Location.File] != nil {
				f := e.Location.File
				bad[f] = append(bad[f], fmt.Sprintf("line %d: %s", e.Location.Row, regoeval.Explain(e.Message)))
			}
		}
		if len(bad) == 0 || round == 10 {
			// A library file fails: a user file replaced a package it needs.
			return nil, fmt.Errorf("template directory %s: the bundled library does not compile with it: %v", dir, c.Errors)
		}
		for f, msgs := range bad {
			pkg := packageName(user[f].Package.Path)
			err := fmt.Errorf("%s: %s", strings.TrimPrefix(f, "user:"), strings.Join(msgs, "; "))
			u.Skipped = append(u.Skipped, err)
			u.broken[pkg] = err
			delete(user, f)
		}
	}
	for _, m := range user {
		name := packageName(m.Package.Path)
		u.packages[name] = m.Package.Path
		delete(u.broken, name) // another file of the package loaded
	}
	u.count = len(user)
	for name := range u.packages {
		if _, ok := lib.packages[name]; ok {
			u.Replaced = append(u.Replaced, name)
		}
	}
	slices.Sort(u.Replaced)
	slices.SortFunc(u.Skipped, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return u, nil
}

// parseEither parses a module as Rego v1 and, when that fails, as v0 (the
// existing Postee's templates are v0).
func parseEither(name, text string) (*ast.Module, error) {
	mod, err := ast.ParseModuleWithOpts(name, text, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err == nil {
		return mod, nil
	}
	mod0, err0 := ast.ParseModuleWithOpts(name, text, ast.ParserOptions{RegoVersion: ast.RegoV0})
	if err0 == nil {
		return mod0, nil
	}
	return nil, err
}

// firstMessage is a parse error as "line N: message".
func firstMessage(err error) string {
	var errs ast.Errors
	if errors.As(err, &errs) && len(errs) > 0 {
		e := errs[0]
		if e.Location != nil {
			return fmt.Sprintf("line %d: %s", e.Location.Row, e.Message)
		}
		return e.Message
	}
	return err.Error()
}

// unit returns the user's package pkg, (nil, nil) when the user has none.
func (u *UserTemplates) unit(template, pkg string) (*unit, error) {
	if u == nil {
		return nil, nil
	}
	where := "rego-package " + strconv.Quote(pkg)
	if ref, ok := u.packages[pkg]; ok {
		sources := maps.Clone(u.files)
		sources[""] = where
		return &unit{compiler: u.compiler, caps: u.caps, pkg: ref, sources: sources}, nil
	}
	if err, ok := u.broken[pkg]; ok {
		return nil, &Error{Template: template, Source: where, Message: "the file defining it in " + u.Dir + " does not compile: " + err.Error()}
	}
	return nil, nil
}

package template

import (
	"net/url"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"
)

// vulnlist(report, format) returns the vulnerabilities of a scan report in
// the one shape of postee.lib.vuls (see library/lib/vuls.rego): objects
// with the strings id, package, installed, fixed, severity, title,
// description, link, target, type, purl and license, the most severe
// first, then by id, package and target. format is the report's format,
// "aqua", "trivy" or "trivyoperator"; any other gives [].
//
// It is a builtin because Rego cannot do this cheaply: building each
// object takes some forty function calls (a field with fallbacks, a
// normalized severity, an advisory link), and the evaluator spends
// microseconds on each, so a 1000-vulnerability report cost 60-90 ms
// before anything was rendered. The Rego it replaces is kept in the
// differential test (vulnlist_test.go), which checks that both agree.
var vulnlistDecl = &rego.Function{
	Name: "vulnlist",
	Description: "Returns the vulnerabilities of a scan report (format \"aqua\", \"trivy\" or \"trivyoperator\") as objects " +
		"{id, package, installed, fixed, severity, title, description, link, target, type, purl, license}, most severe first.",
	Decl: types.NewFunction(
		types.Args(types.Named("report", types.A), types.Named("format", types.S)),
		types.Named("vulnerabilities", types.NewArray(nil, types.NewObject(nil, types.NewDynamicProperty(types.S, types.S)))),
	),
}

func vulnlist(_ rego.BuiltinContext, report, format *ast.Term) (*ast.Term, error) {
	var list []vuln
	in, _ := report.Value.(ast.Object)
	switch format.Value {
	case ast.String("aqua"):
		each(in, "resources", func(r ast.Value) {
			robj, ok := r.(ast.Object)
			if !ok {
				return
			}
			var res ast.Value = ast.NewObject()
			if t := robj.Get(key("resource")); t != nil {
				res = t.Value
			}
			each(robj, "vulnerabilities", func(v ast.Value) { list = append(list, aquaItem(res, v)) })
		})
	case ast.String("trivy"):
		each(in, "Results", func(r ast.Value) {
			robj, ok := r.(ast.Object)
			if !ok {
				return
			}
			each(robj, "Vulnerabilities", func(v ast.Value) {
				if vobj, ok := v.(ast.Object); ok {
					list = append(list, trivyItem(robj, vobj))
				}
			})
		})
	case ast.String("trivyoperator"):
		var rep ast.Value = ast.NewObject()
		if in != nil {
			if t := in.Get(key("report")); t != nil {
				rep = t.Value
			}
		}
		robj, _ := rep.(ast.Object)
		each(robj, "vulnerabilities", func(v ast.Value) { list = append(list, operatorItem(v)) })
	}
	sorted := make([]*vuln, len(list))
	for i := range list {
		list[i].obj = list[i].object()
		sorted[i] = &list[i]
	}
	// Equal keys and objects are the same value: any order of them is
	// the order of Rego's sort.
	slices.SortFunc(sorted, func(a, b *vuln) int {
		if c := vulnRank[a.f[fSeverity]] - vulnRank[b.f[fSeverity]]; c != 0 {
			return c
		}
		if c := strings.Compare(a.f[fID], b.f[fID]); c != 0 {
			return c
		}
		if c := strings.Compare(a.f[fPackage], b.f[fPackage]); c != 0 {
			return c
		}
		if c := strings.Compare(a.f[fTarget], b.f[fTarget]); c != 0 {
			return c
		}
		return ast.Compare(a.obj, b.obj)
	})
	terms := make([]*ast.Term, len(sorted))
	for i, v := range sorted {
		terms[i] = ast.NewTerm(v.obj)
	}
	return ast.ArrayTerm(terms...), nil
}

// each calls f with each element of obj[key]: the elements of an array or
// a set, the values of an object (as Rego's "some x in obj[key]" does).
func each(obj ast.Object, name string, f func(ast.Value)) {
	if obj == nil {
		return
	}
	t := obj.Get(key(name))
	if t == nil {
		return
	}
	switch c := t.Value.(type) {
	case *ast.Array:
		c.Foreach(func(x *ast.Term) { f(x.Value) })
	case ast.Set:
		c.Foreach(func(x *ast.Term) { f(x.Value) })
	case ast.Object:
		c.Foreach(func(_, x *ast.Term) { f(x.Value) })
	}
}

// The fields of a vulnerability, in the sorted order of their keys.
const (
	fDescription = iota
	fFixed
	fID
	fInstalled
	fLicense
	fLink
	fPackage
	fPurl
	fSeverity
	fTarget
	fTitle
	fType
	nFields
)

var fieldKeys = [nFields]string{"description", "fixed", "id", "installed", "license", "link", "package", "purl", "severity", "target", "title", "type"}

type vuln struct {
	f   [nFields]string
	obj ast.Object
}

func (v *vuln) object() ast.Object {
	o := ast.NewObjectWithCapacity(nFields)
	for i, k := range fieldKeys {
		o.Insert(key(k), ast.StringTerm(v.f[i]))
	}
	return o
}

func aquaItem(res, v ast.Value) vuln {
	var x vuln
	id := str(v, "name")
	x.f[fID] = id
	x.f[fPackage] = str(res, "name")
	x.f[fInstalled] = otherwise(first(v, "version", "installed_version"), str(res, "version"))
	x.f[fFixed] = str(v, "fix_version")
	x.f[fSeverity] = normalizeSeverity(first(v, "aqua_severity", "nvd_severity", "vendor_severity", "severity"))
	x.f[fTitle] = oneLine(first(v, "title", "description"))
	x.f[fDescription] = str(v, "description")
	x.f[fLink] = advisoryLink(id, first(v, "nvd_url", "vendor_url"))
	x.f[fTarget] = str(res, "path")
	x.f[fType] = str(res, "format")
	x.f[fLicense] = str(res, "license")
	return x
}

func trivyItem(r, v ast.Object) vuln {
	var x vuln
	id := str(v, "VulnerabilityID")
	x.f[fID] = id
	x.f[fPackage] = str(v, "PkgName")
	x.f[fInstalled] = str(v, "InstalledVersion")
	x.f[fFixed] = str(v, "FixedVersion")
	x.f[fSeverity] = normalizeSeverity(str(v, "Severity"))
	x.f[fTitle] = oneLine(otherwise(str(v, "Title"), str(v, "Description")))
	x.f[fDescription] = str(v, "Description")
	x.f[fLink] = advisoryLink(id, str(v, "PrimaryURL"))
	x.f[fTarget] = str(r, "Target")
	x.f[fType] = str(r, "Type")
	if t := v.Get(key("PkgIdentifier")); t != nil {
		x.f[fPurl] = str(t.Value, "PURL")
	}
	return x
}

func operatorItem(v ast.Value) vuln {
	var x vuln
	id := str(v, "vulnerabilityID")
	x.f[fID] = id
	x.f[fPackage] = str(v, "resource")
	x.f[fInstalled] = str(v, "installedVersion")
	x.f[fFixed] = str(v, "fixedVersion")
	x.f[fSeverity] = normalizeSeverity(str(v, "severity"))
	x.f[fTitle] = oneLine(first(v, "title", "description"))
	x.f[fDescription] = first(v, "description", "title")
	x.f[fLink] = advisoryLink(id, str(v, "primaryLink"))
	x.f[fTarget] = str(v, "target")
	x.f[fType] = first(v, "packageType", "pkgType")
	x.f[fPurl] = str(v, "purl")
	return x
}

// keyTerms are the terms of the keys vulnlist reads and writes, made once
// (ast.InternedTerm allocates for strings it does not intern).
var keyTerms = map[string]*ast.Term{}

func init() {
	for _, k := range append(fieldKeys[:], "resources", "resource", "vulnerabilities", "Results", "Vulnerabilities", "report",
		"name", "version", "installed_version", "fix_version", "aqua_severity", "nvd_severity", "vendor_severity", "severity",
		"title", "description", "nvd_url", "vendor_url", "path", "format", "license",
		"VulnerabilityID", "PkgName", "InstalledVersion", "FixedVersion", "Severity", "Title", "Description", "PrimaryURL",
		"Target", "Type", "PkgIdentifier", "PURL",
		"vulnerabilityID", "installedVersion", "fixedVersion", "primaryLink", "target", "packageType", "pkgType", "purl") {
		keyTerms[k] = ast.StringTerm(k)
	}
}

func key(k string) *ast.Term {
	if t, ok := keyTerms[k]; ok {
		return t
	}
	return ast.StringTerm(k)
}

// str is util.str: the string at key in x, "" when there is none (for a
// set, key itself when the set has it).
func str(x ast.Value, name string) string {
	var t *ast.Term
	switch c := x.(type) {
	case ast.Object:
		t = c.Get(key(name))
	case ast.Set:
		if c.Contains(key(name)) {
			return name
		}
	}
	if t == nil {
		return ""
	}
	s, _ := t.Value.(ast.String)
	return string(s)
}

// first is util.first with keys that are single keys: the first non-empty
// string among x's values at keys, "" when x is not an object.
func first(x ast.Value, keys ...string) string {
	obj, ok := x.(ast.Object)
	if !ok {
		return ""
	}
	for _, k := range keys {
		if t := obj.Get(key(k)); t != nil {
			if s, ok := t.Value.(ast.String); ok && s != "" {
				return string(s)
			}
		}
	}
	return ""
}

func otherwise(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

// oneLine is util.one_line.
var oneLine = strings.NewReplacer("\n", " ", "\r", " ", "\t", " ").Replace

// vulnAliases is postee.lib.vuls.aliases.
var vulnAliases = map[string]string{
	"critical": "critical", "high": "high", "important": "high", "medium": "medium", "moderate": "medium",
	"low": "low", "negligible": "negligible", "none": "negligible", "info": "negligible", "informational": "negligible",
	"unknown": "unknown",
}

// vulnRank is postee.lib.vuls.rank.
var vulnRank = map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3, "negligible": 4, "unknown": 5}

// normalizeSeverity is postee.lib.vuls.normalize on a string.
func normalizeSeverity(s string) string {
	if n, ok := vulnAliases[strings.ToLower(s)]; ok {
		return n
	}
	return "unknown"
}

// advisoryLink is postee.lib.links.vulnerability on strings.
func advisoryLink(id, given string) string {
	l := strings.ToLower(given)
	switch {
	case strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://"):
		return given
	case strings.HasPrefix(id, "CVE-"):
		return "https://nvd.nist.gov/vuln/detail/" + url.QueryEscape(id)
	case strings.HasPrefix(id, "GHSA-"):
		return "https://github.com/advisories/" + url.QueryEscape(id)
	}
	return ""
}

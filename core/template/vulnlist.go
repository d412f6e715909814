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
		if c := vulnRank[a.s(fSeverity)] - vulnRank[b.s(fSeverity)]; c != 0 {
			return c
		}
		if c := strings.Compare(a.s(fID), b.s(fID)); c != 0 {
			return c
		}
		if c := strings.Compare(a.s(fPackage), b.s(fPackage)); c != 0 {
			return c
		}
		if c := strings.Compare(a.s(fTarget), b.s(fTarget)); c != 0 {
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

// vuln is a vulnerability being built: its fields as terms (the event's
// own terms where a field is a string of the event as it is).
type vuln struct {
	f   [nFields]*ast.Term
	obj ast.Object
}

// s is field i as a string.
func (v *vuln) s(i int) string { return string(v.f[i].Value.(ast.String)) }

func (v *vuln) object() ast.Object {
	o := ast.NewObjectWithCapacity(nFields)
	for i, k := range fieldKeys {
		t := v.f[i]
		if t == nil {
			t = emptyString
		}
		o.Insert(key(k), t)
	}
	return o
}

var emptyString = ast.InternedTerm("")

func aquaItem(res, v ast.Value) vuln {
	var x vuln
	id := str(v, "name")
	x.f[fID] = id
	x.f[fPackage] = str(res, "name")
	x.f[fInstalled] = otherwise(first(v, "version", "installed_version"), str(res, "version"))
	x.f[fFixed] = str(v, "fix_version")
	x.f[fSeverity] = severityTerm(first(v, "aqua_severity", "nvd_severity", "vendor_severity", "severity"))
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
	x.f[fSeverity] = severityTerm(str(v, "Severity"))
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
	x.f[fSeverity] = severityTerm(str(v, "severity"))
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

// str is util.str: the string at name in x, "" when there is none (for a
// set, name itself when the set has it).
func str(x ast.Value, name string) *ast.Term {
	switch c := x.(type) {
	case ast.Object:
		if t := c.Get(key(name)); t != nil {
			if _, ok := t.Value.(ast.String); ok {
				return t
			}
		}
	case ast.Set:
		if t := key(name); c.Contains(t) {
			return t
		}
	}
	return emptyString
}

// first is util.first with keys that are single keys: the first non-empty
// string among x's values at names, "" when x is not an object.
func first(x ast.Value, names ...string) *ast.Term {
	obj, ok := x.(ast.Object)
	if !ok {
		return emptyString
	}
	for _, k := range names {
		if t := obj.Get(key(k)); t != nil {
			if s, ok := t.Value.(ast.String); ok && s != "" {
				return t
			}
		}
	}
	return emptyString
}

func isEmpty(t *ast.Term) bool { return t.Value.(ast.String) == "" }

func otherwise(t, fallback *ast.Term) *ast.Term {
	if !isEmpty(t) {
		return t
	}
	return fallback
}

// oneLine is util.one_line.
func oneLine(t *ast.Term) *ast.Term {
	s := string(t.Value.(ast.String))
	if !strings.ContainsAny(s, "\n\r\t") {
		return t
	}
	return ast.StringTerm(oneLineReplacer.Replace(s))
}

var oneLineReplacer = strings.NewReplacer("\n", " ", "\r", " ", "\t", " ")

// vulnAliases is postee.lib.vuls.aliases.
var vulnAliases = map[string]string{
	"critical": "critical", "high": "high", "important": "high", "medium": "medium", "moderate": "medium",
	"low": "low", "negligible": "negligible", "none": "negligible", "info": "negligible", "informational": "negligible",
	"unknown": "unknown",
}

// vulnRank is postee.lib.vuls.rank.
var vulnRank = map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3, "negligible": 4, "unknown": 5}

var severityTerms = map[string]*ast.Term{}

func init() {
	for s := range vulnRank {
		severityTerms[s] = ast.StringTerm(s)
	}
}

// severityTerm is postee.lib.vuls.normalize on a string.
func severityTerm(t *ast.Term) *ast.Term {
	s := string(t.Value.(ast.String))
	if n, ok := vulnAliases[s]; ok {
		return severityTerms[n]
	}
	if n, ok := vulnAliases[strings.ToLower(s)]; ok {
		return severityTerms[n]
	}
	return severityTerms["unknown"]
}

// advisoryLink is postee.lib.links.vulnerability on strings.
func advisoryLink(idTerm, givenTerm *ast.Term) *ast.Term {
	id, given := string(idTerm.Value.(ast.String)), string(givenTerm.Value.(ast.String))
	if isHTTPURL(given) {
		return givenTerm
	}
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return ast.StringTerm("https://nvd.nist.gov/vuln/detail/" + url.QueryEscape(id))
	case strings.HasPrefix(id, "GHSA-"):
		return ast.StringTerm("https://github.com/advisories/" + url.QueryEscape(id))
	}
	return emptyString
}

# The Rego that postee.lib.vuls used to build its list of vulnerabilities
# with, before the vulnlist builtin: the reference of the differential test
# of vulnlist (vulnlist_test.go). result is the reference's list, summary
# the library's.
package vulsref

import data.postee.lib.links
import data.postee.lib.util
import data.postee.lib.vuls

title := "vulnlist"

result := vulnerabilities

summary := vuls.vulnerabilities

format := vuls.format

report := vuls.report

rank := vuls.rank

normalize(s) := vuls.normalize(s)

# vulnerabilities are every vulnerability of the report, the most severe
# first, then by id and package.
vulnerabilities := [v | some keyed in sort([[rank[v.severity], v.id, v.package, v.target, v] | some v in found]); v := keyed[4]]

found := [aqua(r, v) | some r in input.resources; some v in r.vulnerabilities] if format == "aqua"

found := [trivy(r, v) | some r in input.Results; some v in r.Vulnerabilities] if format == "trivy"

found := [operator(v) | some v in report.vulnerabilities] if format == "trivyoperator"

default found := []

aqua(r, v) := {
	"id": id,
	"package": util.str(res, "name"),
	"installed": util.otherwise(util.first(v, ["version", "installed_version"]), util.str(res, "version")),
	"fixed": util.str(v, "fix_version"),
	"severity": normalize(util.first(v, ["aqua_severity", "nvd_severity", "vendor_severity", "severity"])),
	"title": util.one_line(util.first(v, ["title", "description"])),
	"description": util.str(v, "description"),
	"link": links.vulnerability(id, util.first(v, ["nvd_url", "vendor_url"])),
	"target": util.str(res, "path"),
	"type": util.str(res, "format"),
	"purl": "",
	"license": util.str(res, "license"),
} if {
	res := object.get(r, "resource", {})
	id := util.str(v, "name")
}

trivy(r, v) := {
	"id": id,
	"package": util.str(v, "PkgName"),
	"installed": util.str(v, "InstalledVersion"),
	"fixed": util.str(v, "FixedVersion"),
	"severity": normalize(util.str(v, "Severity")),
	"title": util.one_line(util.otherwise(util.str(v, "Title"), util.str(v, "Description"))),
	"description": util.str(v, "Description"),
	"link": links.vulnerability(id, util.str(v, "PrimaryURL")),
	"target": util.str(r, "Target"),
	"type": util.str(r, "Type"),
	"purl": util.str(object.get(v, "PkgIdentifier", {}), "PURL"),
	"license": "",
} if {
	id := util.str(v, "VulnerabilityID")
}

operator(v) := {
	"id": id,
	"package": util.str(v, "resource"),
	"installed": util.str(v, "installedVersion"),
	"fixed": util.str(v, "fixedVersion"),
	"severity": normalize(util.str(v, "severity")),
	"title": util.one_line(util.first(v, ["title", "description"])),
	"description": util.first(v, ["description", "title"]),
	"link": links.vulnerability(id, util.str(v, "primaryLink")),
	"target": util.str(v, "target"),
	"type": util.first(v, ["packageType", "pkgType"]),
	"purl": util.str(v, "purl"),
	"license": "",
} if {
	id := util.str(v, "vulnerabilityID")
}

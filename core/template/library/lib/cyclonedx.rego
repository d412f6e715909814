# CycloneDX 1.4 BOMs (JSON) of the vulnerability report in the input
# (import data.postee.lib.cyclonedx): the scanned image as the BOM's
# component, its vulnerable packages as components, and one vulnerability
# entry per finding, affecting its component.
package postee.lib.cyclonedx

import data.postee.lib.util
import data.postee.lib.vuls

# bom is the BOM of the report in the input.
bom := {
	"bomFormat": "CycloneDX",
	"specVersion": "1.4",
	"version": 1,
	"metadata": object.union(
		{
			"tools": [{"vendor": "postee", "name": "postee"}],
			"component": subject,
		},
		timestamp,
	),
	"components": components,
	"vulnerabilities": vulnerabilities,
}

# subject is the scanned image.
subject := object.union(
	{"type": "container", "bom-ref": vuls.artifact, "name": name},
	{"version": version | version != ""},
) if {
	[name, version] := name_version(vuls.artifact)
}

# name_version(artifact) splits an image reference at the tag or digest:
# ["repo", "tag"], or [artifact, ""] without one.
name_version(artifact) := [concat("@", array.slice(parts, 0, count(parts) - 1)), parts[count(parts) - 1]] if {
	contains(artifact, "@")
	parts := split(artifact, "@")
} else := [substring(artifact, 0, i), substring(artifact, i + 1, -1)] if {
	i := last_colon(artifact)
	i > 0
	not contains(substring(artifact, i + 1, -1), "/") # a registry port, not a tag
} else := [artifact, ""]

last_colon(s) := max(indexes) if {
	indexes := [i | some i, c in split(s, ""); c == ":"]
	count(indexes) > 0
} else := -1

timestamp := {"timestamp": time.format(vuls.date_ns)} if is_number(vuls.date_ns)

default timestamp := {}

# ref(v) is the bom-ref of a vulnerability's package: its purl when the
# scanner gave one, else type:name@version.
ref(v) := v.purl if {
	v.purl != ""
} else := concat("", [util.otherwise(v.type, "package"), ":", v.package, "@", v.installed])

components := sort({component(v) | some v in vuls.vulnerabilities})

component(v) := object.union_n([
	{"bom-ref": ref(v), "type": "library", "name": v.package, "version": v.installed},
	{"purl": v.purl | v.purl != ""},
	{"licenses": [{"license": {"name": v.license}}] | v.license != ""},
])

vulnerabilities := [vulnerability(v) | some v in vuls.vulnerabilities]

vulnerability(v) := object.union_n([
	{
		"id": v.id,
		"ratings": [{"severity": severities[v.severity]}],
		"affects": [{"ref": ref(v), "versions": [{"version": v.installed, "status": "affected"}]}],
	},
	{"source": source(v) | source(v) != {}},
	{"description": v.title | v.title != ""},
	{"detail": v.description | v.description != ""; v.description != v.title},
	{"advisories": [{"url": v.link}] | v.link != ""},
	{"recommendation": concat("", ["Upgrade ", v.package, " to ", v.fixed, "."]) | v.fixed != ""},
])

# CycloneDX 1.4 severities.
severities := {
	"critical": "critical",
	"high": "high",
	"medium": "medium",
	"low": "low",
	"negligible": "info",
	"unknown": "unknown",
}

source(v) := {"name": "NVD", "url": concat("", ["https://nvd.nist.gov/vuln/detail/", v.id])} if {
	startswith(v.id, "CVE-")
} else := {"name": "GitHub", "url": concat("", ["https://github.com/advisories/", v.id])} if {
	startswith(v.id, "GHSA-")
} else := {}

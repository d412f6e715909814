# The vulnerability report in the input, whatever scanner wrote it, in one
# shape for the templates (import data.postee.lib.vuls). It reads:
#
#   - Aqua image scans: image, registry, digest, vulnerability_summary,
#     resources[].resource {name, version, format, path, license} and
#     resources[].vulnerabilities[] {name, version or installed_version,
#     fix_version, aqua_severity / nvd_severity / vendor_severity /
#     severity, nvd_url / vendor_url, description}
#   - Trivy image reports (trivy image --format json): ArtifactName,
#     Metadata, Results[] {Target, Class, Type, Vulnerabilities[]
#     {VulnerabilityID, PkgName, PkgIdentifier.PURL, InstalledVersion,
#     FixedVersion, Severity, Title, Description, PrimaryURL}}
#   - Trivy Operator VulnerabilityReports: metadata {name, namespace,
#     labels}, report {artifact {repository, tag, digest}, registry.server,
#     os, summary, vulnerabilities[] {vulnerabilityID, resource,
#     installedVersion, fixedVersion, severity, title, primaryLink}}
#
# Every vulnerability becomes an object with the strings id, package,
# installed, fixed ("" when there is no fix), severity (one of order),
# title (one line), description, link, target, type, purl and license.
package postee.lib.vuls

import data.postee.lib.links
import data.postee.lib.util

# ---------------------------------------------------------------- severities

# order lists the severities, most severe first.
order := ["critical", "high", "medium", "low", "negligible", "unknown"]

rank := {s: i | some i, s in order}

# labels are the severities as titles show them.
labels := {
	"critical": "Critical",
	"high": "High",
	"medium": "Medium",
	"low": "Low",
	"negligible": "Negligible",
	"unknown": "Unknown",
}

aliases := {
	"critical": "critical",
	"high": "high",
	"important": "high",
	"medium": "medium",
	"moderate": "medium",
	"low": "low",
	"negligible": "negligible",
	"none": "negligible",
	"info": "negligible",
	"informational": "negligible",
	"unknown": "unknown",
}

# normalize(s) is a scanner's severity ("CRITICAL", "moderate", ...) as one
# of order; "unknown" for anything else.
normalize(s) := aliases[lower(s)] if {
	is_string(s)
	aliases[lower(s)]
} else := "unknown"

# count_by_severity(list) counts the objects of list by their severity:
# an object with every severity of order.
count_by_severity(list) := {s: count([1 | some v in list; v.severity == s]) | some s in order}

# top(counts) is the most severe severity with a count, "" when all are 0.
top(counts) := found[0] if {
	found := [s | some s in order; counts[s] > 0]
	count(found) > 0
} else := ""

# shown(counts) are the severities a summary shows: critical to low always,
# negligible and unknown when there are some.
shown(counts) := [s | some s in order; show(s, counts)]

show(s, _) if s in {"critical", "high", "medium", "low"}

show(s, counts) if counts[s] > 0

# ----------------------------------------------------------------- the input

# format is "aqua", "trivy" or "trivyoperator"; undefined for other input.
format := "trivyoperator" if {
	input.kind == "VulnerabilityReport"
} else := "trivyoperator" if {
	is_object(input.report)
	is_array(input.report.vulnerabilities)
} else := "trivy" if {
	is_string(input.ArtifactName)
} else := "trivy" if {
	is_array(input.Results)
} else := "aqua" if {
	is_string(input.image)
}

report := object.get(input, "report", {})

# artifact is what was scanned: the image name (for Trivy Operator
# repository:tag, or repository@digest without a tag).
artifact := util.first(input, ["image"]) if format == "aqua"

artifact := util.first(input, ["ArtifactName"]) if format == "trivy"

artifact := operator_artifact if format == "trivyoperator"

operator_artifact := concat(":", [repository, tag]) if {
	tag := util.first(report, [["artifact", "tag"]])
	tag != ""
} else := concat("@", [repository, digest]) if {
	digest != ""
} else := repository

repository := util.first(report, [["artifact", "repository"]])

# registry is the registry of the image, "" when unknown.
default registry := ""

registry := util.first(input, ["registry"]) if format == "aqua"

registry := util.first(report, [["registry", "server"]]) if format == "trivyoperator"

# digest is the image digest, "" when unknown.
default digest := ""

digest := util.first(input, ["digest"]) if format == "aqua"

digest := d if {
	format == "trivy"
	[_, d] := split(input.Metadata.RepoDigests[0], "@")
}

digest := util.first(report, [["artifact", "digest"]]) if format == "trivyoperator"

# os is the image's operating system, "" when unknown.
default os := ""

os := util.join_nonempty(" ", [util.first(input, ["os"]), util.first(input, ["version"])]) if format == "aqua"

os := util.join_nonempty(" ", [
	util.first(input, [["Metadata", "OS", "Family"]]),
	util.first(input, [["Metadata", "OS", "Name"]]),
]) if format == "trivy"

os := util.join_nonempty(" ", [util.first(report, [["os", "family"]]), util.first(report, [["os", "name"]])]) if format == "trivyoperator"

# workload is the Kubernetes workload of a Trivy Operator report:
# {namespace, kind, name, container}, strings ("" when unknown).
workload := {
	"namespace": util.first(input, [["metadata", "namespace"], ["metadata", "labels", "trivy-operator.resource.namespace"]]),
	"kind": util.first(input, [["metadata", "labels", "trivy-operator.resource.kind"]]),
	"name": util.first(input, [["metadata", "labels", "trivy-operator.resource.name"], ["metadata", "name"]]),
	"container": util.first(input, [["metadata", "labels", "trivy-operator.container.name"]]),
} if format == "trivyoperator"

# workload_ref is the workload as "namespace/Kind/name", "" for other
# reports.
default workload_ref := ""

workload_ref := util.join_nonempty("/", [workload.namespace, workload.kind, workload.name]) if format == "trivyoperator"

# workload_text is the workload as "namespace/Kind/name (container c)", ""
# for other reports.
default workload_text := ""

workload_text := concat("", [workload_ref, container_suffix]) if format == "trivyoperator"

container_suffix := sprintf(" (container %s)", [workload.container]) if {
	workload.container != ""
} else := ""

# date_ns is when the scan ran, in nanoseconds since the epoch; undefined
# when the report does not say.
date_ns := (input.scan_started.seconds * 1000000000) + object.get(input.scan_started, "nanos", 0) if {
	format == "aqua"
	is_number(input.scan_started.seconds)
}

date_ns := time.parse_rfc3339_ns(input.scan_started) if {
	format == "aqua"
	is_string(input.scan_started)
}

date_ns := time.parse_rfc3339_ns(input.CreatedAt) if format == "trivy"

date_ns := time.parse_rfc3339_ns(report.updateTimestamp) if format == "trivyoperator"

# url is the image's page in the Aqua console for Aqua scans when postee
# knows the server (aqua-server in the config); undefined otherwise.
url := u if {
	format == "aqua"
	u := links.aqua_image(object.get(input, ["postee", "AquaServer"], ""), registry, artifact)
	u != ""
}

# title is the message title of a scan report.
title := sprintf("%s vulnerability scan report", [artifact])

# ---------------------------------------------------------- vulnerabilities

# vulnerabilities are every vulnerability of the report, the most severe
# first, then by id, package and target. vulnlist is postee's builtin that
# reads the report: building the objects in Rego took some forty function
# calls each, the most part of rendering a large report.
vulnerabilities := vulnlist(input, format)

default vulnerabilities := []

# counts are the vulnerabilities by severity (every severity of order): the
# report's own summary when it has one, else counted.
counts := aqua_counts if {
	format == "aqua"
	is_object(input.vulnerability_summary)
} else := operator_counts if {
	format == "trivyoperator"
	is_object(report.summary)
} else := counted

# counted is count_by_severity(vulnerabilities) in one pass: in a rule (not
# a function), a comprehension assigned on its own that compares a field
# with a variable of the outer body is indexed by OPA.
counted := {s: count(found) |
	some s in order
	found := [1 | some v in vulnerabilities; v.severity == s]
}

aqua_counts := {s: n |
	some s in order
	n := number(object.get(input.vulnerability_summary, s, 0))
}

operator_counts := {s: n |
	some s in order
	n := sum([number(object.get(report.summary, key, 0)) | some key in operator_keys[s]])
}

operator_keys := {
	"critical": ["criticalCount"],
	"high": ["highCount"],
	"medium": ["mediumCount"],
	"low": ["lowCount"],
	"negligible": ["noneCount"],
	"unknown": ["unknownCount"],
}

number(x) := x if is_number(x)

number(x) := 0 if not is_number(x)

# total is the number of vulnerabilities, by counts.
total := sum([counts[s] | some s in order])

# top_severity is the most severe severity found, "" when none.
top_severity := top(counts)

# fixable is the number of listed vulnerabilities with a fixed version.
fixable := count([1 | some v in vulnerabilities; v.fixed != ""])

# targets are the targets of the vulnerabilities: for Trivy the Results
# with vulnerabilities, in the report's order; else the distinct targets,
# sorted ("" is the image itself).
targets := [t |
	some r in input.Results
	count(object.get(r, "Vulnerabilities", [])) > 0
	t := util.first(r, ["Target"])
] if format == "trivy"

targets := sort({v.target | some v in vulnerabilities}) if format != "trivy"

# summary_text is a one-line summary of the counts, e.g. "2 critical,
# 5 high, 3 medium, 0 low".
summary_text := concat(", ", [sprintf("%d %s", [counts[s], s]) | some s in shown(counts)])

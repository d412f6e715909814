# Policy-Only-Fix-Available.rego: a route filter that keeps image scans with
# at least one vulnerability that has a fix (a fixed version of the package
# exists), so that you are only told about what you can act on.
#
# Use it in a route with
#
#     input-files: ["Policy-Only-Fix-Available.rego"]
#
# Aqua scan results: `resources[].vulnerabilities[].fix_version` is not
# empty. Trivy image reports: `Results[].Vulnerabilities[].FixedVersion` is
# not empty. Other events do not match.
package postee

import rego.v1

# --- edit below ---------------------------------------------------------

# Count only fixable vulnerabilities of this severity or worse: one of
# "negligible" (every vulnerability, also those without a severity), "low",
# "medium", "high", "critical". For example "high" matches a scan only when a
# high or critical vulnerability can be fixed.
min_severity := "negligible"

# --- end of settings ----------------------------------------------------

default allow := false

# Aqua scan results.
allow if {
	some resource in input.resources
	some v in resource.vulnerabilities
	has_fix(v.fix_version)
	severe_enough(v)
}

# Trivy image reports.
allow if {
	some result in input.Results
	some v in result.Vulnerabilities
	has_fix(v.FixedVersion)
	severe_enough(v)
}

has_fix(version) if {
	is_string(version)
	trim_space(version) != ""
}

severity_rank := {
	"unknown": 0,
	"negligible": 0,
	"low": 1,
	"medium": 2,
	"high": 3,
	"critical": 4,
}

threshold := severity_rank[lower(min_severity)]

severe_enough(_) if threshold == 0

severe_enough(v) if severity_rank[severity(v)] >= threshold

# severity is a vulnerability's severity: Aqua's own rating first, then the
# generic, NVD and vendor ones (Aqua), or Trivy's `Severity`.
severity(v) := lower(ratings[0]) if {
	ratings := [s |
		some key in ["aqua_severity", "severity", "Severity", "nvd_severity", "vendor_severity"]
		s := v[key]
		is_string(s)
		s != ""
	]
}

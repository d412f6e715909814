# Policy-Related-Features.rego: the policy features of the other filter
# files, in one file, to be combined with AND.
#
# Several input-files OR together: a route with
#
#     input-files: ["Allow-Image-Name.rego", "Policy-Min-Vulnerability.rego"]
#
# takes an event that passes either file. To require all of several
# conditions, use this file alone,
#
#     input-files: ["Policy-Related-Features.rego"]
#
# edit the settings of the features you use, and list those features in the
# `allow` rule at the end: every line of its body must hold. As shipped, a
# scan matches when its image is allowed AND it has a high or critical
# vulnerability.
#
# Features (each works on Aqua scan results and Trivy image reports):
#   PermitImageNames        the image name contains an entry of allowed_images
#   PermitNotIgnoredImages  the image name contains no entry of ignored_images
#   PermitRegistries        the registry is one of allowed_registries
#   PermitNotIgnoredRegistries  the registry is none of ignored_registries
#   PermitMinVulnerability  at least min_count vulnerabilities of min_severity
#                           or worse
#   PermitOnlyFixAvailable  a vulnerability of fix_min_severity or worse has a
#                           fix
# Image and registry entries with `*` or `?` are globs, as in
# Allow-Image-Name.rego and Allow-Registry.rego, whose comments say more.
package postee

import rego.v1

# --- edit below ---------------------------------------------------------

allowed_images := ["alpine", "nginx"]

ignored_images := ["busybox", "*/sandbox/*"]

allowed_registries := ["Docker Hub", "docker.io", "*.example.com"]

ignored_registries := ["Host Images", "localhost:5000"]

# "negligible", "low", "medium", "high" or "critical".
min_severity := "high"

min_count := 1

# "negligible" (any fixable vulnerability), "low", "medium", "high" or
# "critical".
fix_min_severity := "negligible"

# The conditions an event must meet, all of them (AND). Add, remove or
# reorder feature names; a line may also be any Rego expression, e.g.
# `input.image_assurance_results.disallowed == true`.
allow if {
	PermitImageNames
	PermitMinVulnerability
}

# --- end of settings ----------------------------------------------------

default allow := false

PermitImageNames if {
	some name in image_names
	some entry in allowed_images
	name_matches(name, entry)
}

PermitNotIgnoredImages if {
	count(image_names) > 0
	not ignored_image
}

ignored_image if {
	some name in image_names
	some entry in ignored_images
	name_matches(name, entry)
}

PermitRegistries if {
	some registry in registries
	some entry in allowed_registries
	registry_matches(registry, entry)
}

PermitNotIgnoredRegistries if {
	count(registries) > 0
	not ignored_registry
}

ignored_registry if {
	some registry in registries
	some entry in ignored_registries
	registry_matches(registry, entry)
}

PermitMinVulnerability if aqua_count >= min_count

PermitMinVulnerability if trivy_count >= min_count

PermitOnlyFixAvailable if {
	some resource in input.resources
	some v in resource.vulnerabilities
	has_fix(v.fix_version)
	fix_severe_enough(v)
}

PermitOnlyFixAvailable if {
	some result in input.Results
	some v in result.Vulnerabilities
	has_fix(v.FixedVersion)
	fix_severe_enough(v)
}

# --- helpers --------------------------------------------------------------

# image_names are the names of the scanned image: `image` (Aqua) and
# `ArtifactName` (Trivy).
image_names contains input.image if {
	is_string(input.image)
	input.image != ""
}

image_names contains input.ArtifactName if {
	is_string(input.ArtifactName)
	input.ArtifactName != ""
	object.get(input, "ArtifactType", "container_image") == "container_image"
}

name_matches(name, entry) if {
	not is_glob(entry)
	contains(name, entry)
}

name_matches(name, entry) if {
	is_glob(entry)
	glob.match(entry, null, name)
}

is_glob(entry) if contains(entry, "*")

is_glob(entry) if contains(entry, "?")

# registries: Aqua's name for the registry and the host in the image name
# (docker.io for a name without a host, when the event has no `registry`).
registries contains input.registry if has_registry_field

registries contains host if {
	some name in image_names
	host := name_host(name)
}

registries contains "docker.io" if {
	not has_registry_field
	some name in image_names
	not name_host(name)
}

has_registry_field if {
	is_string(input.registry)
	input.registry != ""
}

name_host(name) := host if {
	contains(name, "/")
	host := split(name, "/")[0]
	looks_like_host(host)
}

looks_like_host(s) if contains(s, ".")

looks_like_host(s) if contains(s, ":")

looks_like_host(s) if s == "localhost"

registry_matches(registry, entry) if {
	not is_glob(entry)
	lower(registry) == lower(entry)
}

registry_matches(registry, entry) if {
	is_glob(entry)
	glob.match(lower(entry), null, lower(registry))
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

aqua_count := sum([n |
	some severity, n in input.vulnerability_summary
	is_number(n)
	severity_rank[severity] >= threshold
])

trivy_count := count([v |
	some result in input.Results
	some v in result.Vulnerabilities
	severity_rank[lower(v.Severity)] >= threshold
])

has_fix(version) if {
	is_string(version)
	trim_space(version) != ""
}

fix_threshold := severity_rank[lower(fix_min_severity)]

fix_severe_enough(_) if fix_threshold == 0

fix_severe_enough(v) if severity_rank[severity(v)] >= fix_threshold

severity(v) := lower(ratings[0]) if {
	ratings := [s |
		some key in ["aqua_severity", "severity", "Severity", "nvd_severity", "vendor_severity"]
		s := v[key]
		is_string(s)
		s != ""
	]
}

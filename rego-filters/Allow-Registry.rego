# Allow-Registry.rego: a route filter that keeps image scans of images from
# the registries listed below, and drops everything else.
#
# Use it in a route with
#
#     input-files: ["Allow-Registry.rego"]
#
# Edit `allowed_registries`. An entry is compared with the event's registry,
# ignoring case:
#   - Aqua scan results name the registry as it is configured in Aqua
#     (`registry`, e.g. "Docker Hub", "ECR-prod", "Host Images");
#   - a registry host written in the image name is matched too
#     ("registry.example.com/team/app:1" is from "registry.example.com");
#   - a Trivy image report (`ArtifactName`) or any event with an image name
#     but no `registry` field is from "docker.io" when its name has no host.
# An entry with `*` or `?` is a glob: "*.example.com" matches
# "registry.example.com" and "eu.registry.example.com".
#
# Events without a registry or image name (Tracee findings, ...) do not
# match.
package postee

import rego.v1

# --- edit below ---------------------------------------------------------

allowed_registries := [
	"Docker Hub",
	"docker.io",
	"*.example.com",
]

# --- end of settings ----------------------------------------------------

default allow := false

allow if {
	some registry in registries
	some entry in allowed_registries
	registry_matches(registry, entry)
}

# registries are the names of the event's registry: Aqua's name for it and
# the host in the image name.
registries contains input.registry if {
	is_string(input.registry)
	input.registry != ""
}

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

# name_host is the registry host at the start of an image name: the part
# before the first "/" when it looks like a host (has a "." or ":", or is
# "localhost"), as docker reads it.
name_host(name) := host if {
	contains(name, "/")
	host := split(name, "/")[0]
	looks_like_host(host)
}

looks_like_host(s) if contains(s, ".")

looks_like_host(s) if contains(s, ":")

looks_like_host(s) if s == "localhost"

# image_names are the names of the scanned image found in the event.
image_names contains input.image if {
	is_string(input.image)
	input.image != ""
}

image_names contains input.ArtifactName if {
	is_string(input.ArtifactName)
	input.ArtifactName != ""
	object.get(input, "ArtifactType", "container_image") == "container_image"
}

# registry_matches: an entry equals the registry (ignoring case), or is a
# glob when it has * or ?.
registry_matches(registry, entry) if {
	not is_glob(entry)
	lower(registry) == lower(entry)
}

registry_matches(registry, entry) if {
	is_glob(entry)
	glob.match(lower(entry), null, lower(registry))
}

is_glob(entry) if contains(entry, "*")

is_glob(entry) if contains(entry, "?")

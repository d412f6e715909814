# Allow-Image-Name.rego: a route filter that keeps image scans of the images
# listed below, and drops everything else.
#
# Use it in a route with
#
#     input-files: ["Allow-Image-Name.rego"]
#
# Edit `allowed_images` to name your images. An entry matches when the image
# name contains it: "alpine" matches "alpine:3.18",
# "docker.io/library/alpine:3.18" and also "my-alpine-base:1". An entry with
# `*` or `?` is a glob matched against the whole name instead (`*` is any run
# of characters, `?` one character): "*/team/*" matches every image of a
# team, "alpine:3.*" only alpine 3.x tags.
#
# The image name is read from Aqua scan results (`image`) and from Trivy
# image reports (`ArtifactName`). Events without one (Tracee findings, ...)
# do not match.
#
# Several input-files OR together; to require this AND another condition,
# see Policy-Related-Features.rego.
package postee

import rego.v1

# --- edit below ---------------------------------------------------------

allowed_images := [
	"alpine",
	"nginx",
]

# --- end of settings ----------------------------------------------------

default allow := false

allow if {
	some name in image_names
	some entry in allowed_images
	name_matches(name, entry)
}

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

# name_matches: an entry is a substring, or a glob when it has * or ?.
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

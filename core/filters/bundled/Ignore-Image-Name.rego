# Ignore-Image-Name.rego: a route filter that keeps image scans of every
# image except the ones listed below.
#
# Use it in a route with
#
#     input-files: ["Ignore-Image-Name.rego"]
#
# Edit `ignored_images` to name the images to drop. An entry matches when the
# image name contains it: "busybox" drops "busybox:1.36" and
# "docker.io/library/busybox:latest". An entry with `*` or `?` is a glob
# matched against the whole name instead (`*` is any run of characters, `?`
# one character): "*:latest" drops every `latest` tag, "test/*" everything
# under test/.
#
# The image name is read from Aqua scan results (`image`) and from Trivy
# image reports (`ArtifactName`). Events without one (Tracee findings, ...)
# do not match either: the filter is meant for routes of scan results.
package postee

import rego.v1

# --- edit below ---------------------------------------------------------

ignored_images := [
	"busybox",
	"*/sandbox/*",
]

# --- end of settings ----------------------------------------------------

default allow := false

allow if {
	count(image_names) > 0
	not ignored
}

ignored if {
	some name in image_names
	some entry in ignored_images
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

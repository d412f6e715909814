# Links the bundled templates build (import data.postee.lib.links).
package postee.lib.links

# safe(url) is url when it is an http or https URL, else "": event text must
# not become a javascript: or data: link.
safe(url) := url if {
	is_string(url)
	startswith(lower(url), "https://")
} else := url if {
	is_string(url)
	startswith(lower(url), "http://")
} else := ""

# vulnerability(id, given) is the advisory page of a vulnerability: given
# when it is an http(s) URL, else the NVD page of a CVE or the GitHub page
# of a GHSA advisory, else "".
vulnerability(id, given) := given if {
	safe(given) != ""
} else := concat("", ["https://nvd.nist.gov/vuln/detail/", urlquery.encode(id)]) if {
	startswith(id, "CVE-")
} else := concat("", ["https://github.com/advisories/", urlquery.encode(id)]) if {
	startswith(id, "GHSA-")
} else := ""

# aqua_image(server, registry, image) is the image's page in
# the Aqua console, "" without a server. server is input.postee.AquaServer,
# "<aqua-server>/#/images/".
aqua_image(server, registry, image) := sprintf("%s%s/%s", [server, urlquery.encode(registry), urlquery.encode(image)]) if {
	server != ""
	image != ""
} else := ""

# mitre(technique) is the MITRE ATT&CK page of a technique id such as
# "T1059" or "T1059.004", "" for anything else.
mitre(technique) := sprintf("https://attack.mitre.org/techniques/%s/", [replace(technique, ".", "/")]) if {
	is_string(technique)
	regex.match(`^T[0-9]{4}(\.[0-9]{3})?$`, technique)
} else := ""

# A Trivy Operator VulnerabilityReport as a CycloneDX 1.4 BOM (JSON) for
# Dependency-Track: title is "<repository>:<tag>", which the
# dependencytrack action splits into project name and version; result is
# the BOM object (sent as JSON) with the image as subject, the vulnerable
# packages as components and the vulnerabilities.
package postee.trivyoperator.dependencytrack

import data.postee.lib.cyclonedx
import data.postee.lib.util
import data.postee.lib.vuls

title := concat(":", [vuls.repository, util.otherwise(util.first(vuls.report, [["artifact", "tag"]]), "latest")]) if {
	vuls.format == "trivyoperator"
} else := concat(":", cyclonedx.name_version(vuls.artifact)) if {
	cyclonedx.name_version(vuls.artifact)[1] != ""
} else := concat(":", [vuls.artifact, "latest"])

severity := vuls.top_severity

result := cyclonedx.bom

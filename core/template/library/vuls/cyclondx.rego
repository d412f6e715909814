# An image scan report as a CycloneDX 1.4 BOM in JSON: the image as the
# BOM's subject, the vulnerable packages as components (with purl and
# license when the scanner gives them) and the vulnerabilities with their
# severity, advisory link, fix recommendation and affected component.
# Reads Aqua scans, Trivy reports and Trivy Operator VulnerabilityReports
# (see postee.lib.vuls). The package name keeps the original's spelling.
#
# title is the image name, as in the original (Dependency-Track actions read
# it as project:version); result is the BOM object (sent as JSON).
package postee.vuls.cyclondx

import data.postee.lib.cyclonedx
import data.postee.lib.vuls

title := vuls.artifact

url := vuls.url

severity := vuls.top_severity

result := cyclonedx.bom

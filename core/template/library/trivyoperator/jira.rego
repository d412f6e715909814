# A Trivy Operator VulnerabilityReport as a Jira issue description (wiki
# markup): the image, registry and Kubernetes workload, a summary table by
# severity and a table of the vulnerabilities with links to their
# advisories, the most severe first (at most 100 rows).
package postee.trivyoperator.jira

import data.postee.lib.vuls
import data.postee.lib.vulsjira

title := sprintf("%s vulnerability scan report (%s)", [vuls.artifact, vuls.workload_ref]) if {
	vuls.workload_ref != ""
} else := vuls.title

severity := vuls.top_severity

summary := vuls.summary_text

category := "vulnerability"

result := vulsjira.description

# A Trivy image report as a Jira issue description (wiki markup): the
# artifact and its OS, a summary table by severity, and for each target
# (the OS, each lock file or binary) a table of its vulnerabilities with
# links to their advisories, the most severe first (at most 100 rows).
# Also reads Aqua scans and Trivy Operator reports (see postee.lib.vuls).
package postee.trivy.jira

import data.postee.lib.vuls
import data.postee.lib.vulsjira

title := vuls.title

url := vuls.url

severity := vuls.top_severity

summary := vuls.summary_text

result := vulsjira.description

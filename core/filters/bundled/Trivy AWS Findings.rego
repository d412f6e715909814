# Trivy AWS Findings.rego: a route filter that keeps Trivy results in the
# AWS Security Finding Format (ASFF), as Trivy writes them for AWS Security
# Hub (`trivy ... --format template --template "@contrib/asff.tpl"`), so a
# route can send them on with the awssecurityhub action.
#
# Use it in a route with
#
#     input-files: ["Trivy AWS Findings"]
#
# An event matches when it has a `Findings` list and a finding's
# `ProductFields["Product Name"]` (or its `ProductName`) contains one of
# `products`. Other events, and ASFF findings of other tools, do not match.
package postee

import rego.v1

# --- edit below ---------------------------------------------------------

# Product names that select a finding (a finding matches when its product
# name contains one of them).
products := {"Trivy"}

# --- end of settings ----------------------------------------------------

default allow := false

allow if {
	some finding in input.Findings
	some product in products
	contains(product_name(finding), product)
}

product_name(finding) := finding.ProductFields["Product Name"] if {
	is_string(finding.ProductFields["Product Name"])
} else := finding.ProductName if {
	is_string(finding.ProductName)
} else := ""

# Credential Access.rego: a route filter that keeps Tracee findings of the
# MITRE ATT&CK tactic "Credential Access": stealing credentials, such as
# reading Kubernetes service-account tokens or TLS keys, or dumping the memory
# of other processes.
#
# Use it in a route with
#
#     input-files: ["Credential Access"]
#
# (with or without ".rego"). A finding matches when its signature's tactic is
# one of `tactics`, or its signature ID is in `extra_signatures`, unless the
# ID is in `excluded_signatures` or the finding is less severe than
# `min_severity`. The tactic is read from the signature's "MITRE ATT&CK"
# property ("Credential Access: <technique>") or, in newer Tracee output, from
# its "Category" property ("credential-access").
#
# Both Tracee formats are understood: tracee-rules findings
# (`SigMetadata.ID`, `SigMetadata.Properties`) and Tracee events with
# signature metadata (`metadata.Properties.signatureID`). Other events do not
# match.
package postee

import rego.v1

# --- edit below ---------------------------------------------------------

# Tactic names, as written in MITRE ATT&CK (case does not matter). Add more
# to widen the set, e.g. {"Credential Access", "Execution"}.
tactics := {"Credential Access"}

# Signature IDs that match whatever their tactic, e.g. {"TRC-1", "MY-SIG-7"}.
extra_signatures := set()

# Signature IDs that never match, to mute a noisy signature.
excluded_signatures := set()

# Minimum Tracee severity (0 to 4); 0 keeps every finding.
min_severity := 0

# --- end of settings ----------------------------------------------------

default allow := false

allow if {
	selected
	not excluded
	severe_enough
}

selected if {
	some tactic in tactics
	lower(tactic) in finding_tactics
}

selected if signature_id in extra_signatures

excluded if signature_id in excluded_signatures

# properties are the signature's properties, in either format.
properties := input.SigMetadata.Properties if {
	is_object(input.SigMetadata.Properties)
} else := input.metadata.Properties if {
	is_object(input.metadata.Properties)
}

signature_id := input.SigMetadata.ID if {
	is_string(input.SigMetadata.ID)
} else := properties.signatureID if {
	is_string(properties.signatureID)
}

# finding_tactics are the finding's tactics, lower case: "defense evasion".
finding_tactics contains lower(trim_space(split(mitre, ":")[0])) if {
	mitre := properties["MITRE ATT&CK"]
	is_string(mitre)
}

finding_tactics contains lower(replace(category, "-", " ")) if {
	category := properties.Category
	is_string(category)
}

severe_enough if min_severity <= 0

severe_enough if {
	is_number(properties.Severity)
	properties.Severity >= min_severity
}

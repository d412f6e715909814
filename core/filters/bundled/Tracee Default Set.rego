# Tracee Default Set.rego: a route filter that keeps the findings of Tracee's
# own signatures, the set Tracee runs by default (their IDs start with
# "TRC-"), whatever their tactic.
#
# Use it in a route with
#
#     input-files: ["Tracee Default Set"]
#
# (with or without ".rego"). Findings of your own signatures match when their
# IDs are listed in `extra_signatures`; a signature listed in
# `excluded_signatures` never matches; findings less severe than
# `min_severity` do not match. To keep only some tactics, use the files named
# after them ("Initial Access", "Credential Access", "Privilege Escalation",
# "Defense Evasion", "Persistence") instead.
#
# Both Tracee formats are understood: tracee-rules findings
# (`SigMetadata.ID`, `SigMetadata.Properties`) and Tracee events with
# signature metadata (`metadata.Properties.signatureID`). Other events do not
# match.
package postee

import rego.v1

# --- edit below ---------------------------------------------------------

# Signature ID prefix of Tracee's built-in signatures.
prefix := "TRC-"

# IDs of other signatures that match too, e.g. {"MY-SIG-7"}.
extra_signatures := set()

# Signature IDs that never match, to mute a noisy signature, e.g. {"TRC-2"}.
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

selected if startswith(signature_id, prefix)

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

severe_enough if min_severity <= 0

severe_enough if {
	is_number(properties.Severity)
	properties.Severity >= min_severity
}

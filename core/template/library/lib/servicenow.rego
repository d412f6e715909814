# Helpers for the bundled ServiceNow templates (import
# data.postee.lib.servicenow): the record fields of the incident table.
package postee.lib.servicenow

import data.postee.lib.util

# level(s) is ServiceNow's impact and urgency for a severity name: 1 (high)
# for critical and high, 2 (medium) for medium, 3 (low) otherwise.
level(s) := 1 if {
	s in {"critical", "high"}
} else := 2 if {
	s == "medium"
} else := 3

# opened_at(ns) is a time in nanoseconds as ServiceNow's date-time format,
# UTC ("2024-03-01 12:00:00").
opened_at(ns) := time.format([ns, "UTC", "2006-01-02 15:04:05"])

# seconds(ns) is a time in nanoseconds as whole seconds since the epoch,
# the date the original postee's ServiceNow action reads.
seconds(ns) := floor(ns / 1000000000)

# assigned_to is the owner of the event's application scope when there is
# exactly one (Aqua events), "" otherwise.
assigned_to := owners[0] if {
	owners := [o | some o in as_list(object.get(input, "application_scope_owners", [])); is_string(o)]
	count(owners) == 1
} else := ""

# assignment_group is the event's application scope when there is exactly
# one (Aqua events), "" otherwise.
assignment_group := scopes[0] if {
	scopes := [s | some s in as_list(object.get(input, "application_scope", [])); is_string(s)]
	count(scopes) == 1
} else := ""

as_list(x) := x if {
	is_array(x)
} else := [x] if {
	is_string(x)
} else := []

# record(fields) is an incident record: the fields with a value ("" and
# null are left out).
record(fields) := {k: v |
	some k, v in fields
	not v in {"", null}
}

# work_notes(html) wraps HTML for a journal field, where ServiceNow renders
# [code] blocks as HTML.
work_notes(html) := sprintf("[code]%s[/code]", [html])

# short_description(s) is s on one line, at most 160 characters (the
# field's size).
short_description(s) := util.truncate(util.one_line(s), 160)

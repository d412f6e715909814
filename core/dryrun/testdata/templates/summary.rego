package postee.test.summary

title := sprintf("batch item %s", [input.image])

result := input.image

aggregation_pkg := "postee.test.summary.aggregation"

package postee.test.plain

title := sprintf("%s: %s", [object.get(input, "kind", "scan"), object.get(input, "image", "no image")])

result := concat("\n", [
	sprintf("critical: %v", [object.get(input, ["vulnerability_summary", "critical"], 0)]),
	sprintf("registry: %s", [object.get(input, "registry", "none")]),
])

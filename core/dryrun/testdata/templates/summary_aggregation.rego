package postee.test.summary.aggregation

title := sprintf("%d images", [count(input)])

result := concat(", ", [item.description | some item in input])

package sdkevent_test

import (
	"fmt"

	"github.com/postee-dev/postee/sdk/sdkevent"
)

func Example() {
	// In Configure: parse the setting once.
	arg := sdkevent.Parse("--image=event.input.image --critical=event.input.summary.critical")
	// In Execute: fill it from the raw event.
	out, missing, err := arg.Execute([]byte(`{"image":"alpine:3.18","summary":{"high":1}}`), sdkevent.NullMissing)
	fmt.Printf("%q %q %v\n", out, missing, err)
	// Output: "--image=alpine:3.18 --critical=" ["event.input.summary.critical"] <nil>
}

package sdk_test

import (
	"fmt"

	"github.com/postee-dev/postee/sdk"
)

func ExampleSettings_Decode() {
	var s struct {
		URL     string                `json:"url"`
		Timeout *sdk.PositiveDuration `json:"timeout"`
	}
	settings := sdk.NewSettings(map[string]any{"url": "https://hooks.example.com", "timeout": "1m30s"})
	if err := settings.Decode(&s); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.URL, s.Timeout.D())

	// Keys match exactly, and every problem is reported.
	err := sdk.NewSettings(map[string]any{"URL": "https://x", "timeout": 0}).Decode(&s)
	fmt.Println(err)
	// Output:
	// https://hooks.example.com 1m30s
	// URL: unknown key "URL"; keys are matched exactly: did you mean "url"?
	// timeout: must be greater than zero
}

func ExampleExpandOwners() {
	event := []byte(`{"image":"alpine","application_scope_owners":["ann@example.com","bob@example.com"]}`)
	fmt.Println(sdk.ExpandOwners([]string{"secops@example.com", sdk.OwnerPlaceholder}, event))
	// Output: [secops@example.com ann@example.com bob@example.com]
}

func ExampleParseByteSize() {
	n, _ := sdk.ParseByteSize("64KB")
	fmt.Println(n.Int64())
	// Output: 65536
}

func ExamplePermanent() {
	err := sdk.Permanentf("status 400: %s", "invalid_blocks")
	fmt.Println(sdk.IsPermanent(err), err)
	// Output: true status 400: invalid_blocks
}

// Package sdktest runs an action plugin inside `go test` through the real
// gRPC encoding and go-plugin plumbing, without building a binary:
//
//	h := sdktest.New(t, sdk.Plugin{Type: "mytype", New: newAction})
//	h.MustConfigure("my-action", map[string]any{"url": srv.URL})
//	res := h.Execute("my-action", sdktest.Event(`{"image":"alpine"}`, sdk.Message{Description: "hi"}))
package sdktest

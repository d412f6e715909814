// Package sdktest runs an action plugin inside `go test` through the real
// gRPC service and encoding postee uses, without building a binary:
//
//	h := sdktest.New(t, sdk.Plugin{Type: "mytype", New: newAction})
//	h.MustConfigure("my-action", map[string]any{"url": srv.URL})
//	res := h.Execute("my-action", sdktest.Event(`{"image":"alpine"}`, sdk.Message{Description: "hi"}))
//
// For an action that calls an HTTP service, NewServer starts a loopback
// server that records every request and answers scripted replies:
//
//	srv := sdktest.NewServer(t, sdktest.Reply{Status: 503, Header: map[string]string{"Retry-After": "1"}}, sdktest.Reply{Status: 202})
//	... srv.URL ...
//	req := srv.Only(t) // or srv.Requests(), srv.Wait(t, n)
package sdktest

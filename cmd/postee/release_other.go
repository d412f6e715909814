//go:build !linux

package main

// dropStartPages does nothing outside Linux.
func dropStartPages() int64 { return 0 }

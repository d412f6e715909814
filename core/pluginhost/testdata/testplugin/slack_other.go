//go:build !linux

package main

import "errors"

func timerSlack() (int, error) { return 0, errors.New("no timer slack on this system") }

//go:build !linux

package main

import (
	"errors"
	"runtime"
)

// run reports that the bench needs Linux: its servers, gates and
// namespaces are Linux's.
func run(config) error {
	return errors.New("the benchmarks run on Linux only, not " + runtime.GOOS)
}

// runHolder exists on Linux only.
func runHolder([]string) int { return 1 }

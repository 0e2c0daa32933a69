//go:build !linux

package sockdrain

import (
	"fmt"
	"runtime"
)

// Closing idle connections needs pidfd_getfd, which only Linux has.

func newIdleCloser([]int, []Listener) (idleCloser, error) { return nil, errNoCloseIdle() }

func probeCloseIdle() error { return errNoCloseIdle() }

func errNoCloseIdle() error {
	return fmt.Errorf("%w: closing idle connections needs pidfd_getfd, which %s lacks", ErrNotSupported, runtime.GOOS)
}

//go:build !linux

package sockdrain

import (
	"fmt"
	"runtime"
)

// newIdleCloser: closing idle connections needs pidfd_getfd, which only
// Linux has.
func newIdleCloser([]int, []Listener) (idleCloser, error) {
	return nil, fmt.Errorf("%w: closing idle connections needs pidfd_getfd, which %s lacks", ErrNotSupported, runtime.GOOS)
}

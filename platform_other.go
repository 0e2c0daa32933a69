//go:build !linux && !freebsd

package sockdrain

import (
	"fmt"
	"runtime"
)

func openSource(string) (source, error) {
	return nil, fmt.Errorf("observe sockets on %s: %w", runtime.GOOS, ErrNotSupported)
}

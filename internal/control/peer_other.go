//go:build !linux && !freebsd

package control

import (
	"errors"
	"net"
	"runtime"
)

// peerUID cannot tell who connected on this OS, so every peer is refused.
func peerUID(*net.UnixConn) (int, error) {
	return -1, errors.New("read peer credentials: not implemented on " + runtime.GOOS)
}

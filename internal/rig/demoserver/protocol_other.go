//go:build !linux && !freebsd

package demoserver

import (
	"errors"
	"syscall"
)

func socketProtocol(syscall.Conn) (int, error) {
	return 0, errors.New("SO_PROTOCOL not supported on this OS")
}

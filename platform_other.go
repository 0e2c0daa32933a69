//go:build !linux && !freebsd

package sockdrain

import (
	"fmt"
	"os"
	"runtime"
)

// Neither observing nor gating is supported here.

func openSource(string) (source, error) { return nil, errOS() }

func openNamespace(string) (namespace, error) { return nil, errOS() }

func syncookies(namespace) string { return "" }

func grabSockets(Listener, int) ([]*os.File, []int, error) { return nil, nil, errOS() }

func grabIn(Listener, []int) []*os.File { return nil }

func ownerPIDs(*session, int) ([]int, error) { return nil, errOS() }

func watchServers([]int) (servers, error) { return nil, errOS() }

type portLock struct{}

func lockPort(uint64, uint16) (*portLock, error) { return nil, errOS() }

func (*portLock) unlock() {}

func errOS() error { return fmt.Errorf("sockdrain on %s: %w", runtime.GOOS, ErrNotSupported) }

package inetdiag

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// The sock_diag multicast groups on which the kernel reports each TCP socket
// it frees (enum sknetlink_groups in linux/sock_diag.h). `ss -E` listens to
// them.
const (
	groupTCPDestroy  = 1 // SKNLGRP_INET_TCP_DESTROY
	groupTCP6Destroy = 3 // SKNLGRP_INET6_TCP_DESTROY
)

// nlmsgHeaderLen is the size of struct nlmsghdr, which precedes the
// inet_diag_msg in each event.
const nlmsgHeaderLen = 16

// ErrOverrun reports destroy events the kernel dropped because the
// receiver fell behind: any socket may have gone since the last one seen.
var ErrOverrun = errors.New("sock_diag destroy events lost")

// DestroyFilter is a classic BPF socket filter that keeps only the destroy
// events of sockets whose local port is port, so the kernel drops the rest
// before they wake the receiver.
func DestroyFilter(port uint16) ([]bpf.RawInstruction, error) {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: nlmsgHeaderLen + 4, Size: 2}, // id.idiag_sport, network order
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(port), SkipFalse: 1},
		bpf.RetConstant{Val: 0xffff_ffff},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		return nil, fmt.Errorf("assemble destroy filter for port %d: %w", port, err)
	}
	return prog, nil
}

// ParseDestroyed decodes the bodies of destroy events and keeps the sockets
// whose local port is port.
func ParseDestroyed(bodies [][]byte, port uint16) ([]observe.Socket, error) {
	var gone []observe.Socket
	for _, b := range bodies {
		s, err := ParseMessage(b)
		if err != nil {
			return gone, fmt.Errorf("parse destroy event: %w", err)
		}
		if s.Local.Port() == port {
			gone = append(gone, s)
		}
	}
	return gone, nil
}

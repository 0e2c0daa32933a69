// Package reuseport is the gate that sits inside a listener's SO_REUSEPORT
// group: an SK_REUSEPORT program, attached with SO_ATTACH_REUSEPORT_EBPF
// to one socket of the group, drops every pure SYN while an armed flag is
// set, so the kernel answers it with a RST.
//
// The gate needs a socket of the group (gate.Listener.Sockets), the group
// must have been made with SO_REUSEPORT set before bind, and the sockets
// must not be MPTCP. A group runs at most one reuseport program, so the
// gate refuses a group that already runs one it did not attach.
//
// The program and its flag map are pinned under the bpffs directory of
// the listener's key. They stay attached after the process exits, until
// Disarm or until the last socket of the group closes. The gate is
// therefore not fail-safe: a tool that dies while armed leaves the port
// refusing until a later process opens the gate and disarms it.
package reuseport

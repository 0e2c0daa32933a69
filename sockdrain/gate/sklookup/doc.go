// Package sklookup is the gate that works on any listener of a network
// namespace: an SK_LOOKUP program, attached to the namespace with a BPF
// link, drops the kernel's socket lookup for new TCP connections to the
// listener's address and port, so the kernel answers their SYN with a RST.
//
// It works without SO_REUSEPORT, on MPTCP listeners, on IPv4 and IPv6,
// and needs no socket of the listener. It cannot see TCP flags, so with
// SYN cookies in play a client whose cookie handshake completes after
// arming gets ECONNRESET after a successful connect.
//
// The gate is tied to the drained listener's life when it has the
// listener's sockets: they go into a SOCKMAP, the kernel removes each
// entry when its socket closes, and the program refuses while one is left
// and for CloseGrace after it last found one. The grace covers the
// microseconds in which a closing socket has left the SOCKMAP but still
// listens: a SYN let through then would be reset. A server restarted on
// the same port is refused for at most CloseGrace. MPTCP sockets can't enter a SOCKMAP, so a gate on an MPTCP
// listener is not tied (see Gate.Tied) and refuses until disarmed.
//
// The link and the maps are pinned under the bpffs directory of the
// listener's key, so the gate outlives the process that armed it.
//
// Another sk_lookup program in the namespace that assigns a socket with
// bpf_sk_assign overrides the drop, whatever the attach order;
// OtherPrograms lists them.
package sklookup

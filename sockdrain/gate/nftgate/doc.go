// Package nftgate is the gate built from one nftables rule, for Linux
// kernels where BPF is not available. It lives in directory
// sockdrain/gate/nftgate, not nftables, so that it never shares a
// name with github.com/google/nftables, the netlink client it is built on.
// It never runs the nft command.
//
// # What it makes
//
// In the listener's network namespace, one table of ours, "inet
// sockdrain", holds one base chain, "input" (and one regular chain,
// "tied", below): type filter, hook input,
// priority -150 (mangle; see ChainPriority for why), policy accept. Each
// armed listener adds one rule to it, the equivalent of
//
//	nft add rule inet sockdrain input [ip|ip6 daddr A] tcp dport P \
//		tcp flags & (syn|ack) == syn reject with tcp reset comment "KEY"
//
// where KEY is gate.Listener.Key(); a later process finds the rule by it.
// That is the untied rule; a tied one jumps where this one rejects.
// The address match depends on the listener:
//
//   - a specific address (127.0.0.1:P, [::1]:P): that address only, so other
//     addresses on the same port keep accepting;
//   - an IPv4-mapped IPv6 address ([::ffff:A]:P): IPv4 address A;
//   - 0.0.0.0:P: every IPv4 address;
//   - [::]:P: every IPv6 and IPv4 address, as a dual-stack socket receives
//     both, unless the socket says IPV6_V6ONLY or the caller uses OpenV6Only.
//
// An untied wildcard gate also refuses SYNs to more specific listeners on
// the same port, such as an SO_REUSEPORT sibling bound to one address; a
// tied one refuses only SYNs the kernel would hand to a marked socket.
//
// Arm adds the table, chain and rule in one netlink batch, so a failure
// leaves nothing. Disarm deletes this listener's rules in one batch, with
// the chain and table when nothing else is left in them. No other table
// is ever changed.
//
// # What it does and does not do
//
// The rule refuses only pure SYNs (SYN without ACK). The ACK that
// completes a SYN-cookie handshake passes, so a client whose cookie was
// issued before arming still connects. Queued and established connections
// are untouched.
//
// The rule runs on every packet that reaches the input hook of the
// namespace, not once per connection, at the cost of a few comparisons.
//
// # Tied to the listener
//
// When the gate has the listener's sockets (gate.Listener.Sockets), its
// rule is tied to them: Arm adds the rule with "jump tied" in place of the
// reject, then sets SO_MARK SocketMark (0x2000) on every socket (each one
// of an SO_REUSEPORT group; on MPTCP, the mark reaches the TCP subflow
// listener). The chain "tied", shared by all tied rules, decides by the
// socket the kernel finds for the SYN, as TCP will:
//
//	socket mark 0x2000 reject with tcp reset  # the listener we marked
//	socket mark return                        # any other listener
//	socket transparent reject with tcp reset  # TIME_WAIT, request socket
//
// When the marked listener closes, the rule refuses nothing more: a new
// listener on the same address and port accepts at once, before Disarm.
// Disarm takes the mark off the sockets still open and deletes the rules,
// which carry the listener's key, so it works after the listener is gone.
//
// What the tie leaves open or closed:
//   - A SYN whose 4-tuple is in TIME_WAIT on the server finds the TIME_WAIT
//     socket, not the listener, and the socket expression can't tell whose
//     it was. It is refused, as TCP would otherwise reopen the connection
//     on the draining listener. So a new listener's client that reuses the
//     4-tuple of a connection closed by the server in the last 60 s is
//     refused until Disarm, and so is a retransmitted SYN of a handshake
//     in flight.
//   - A connection accepted from a marked listener inherits its mark
//     (inet_request_mark): one whose handshake completes with a SYN
//     cookie after arming, or whose SYN raced the marking. Its packets
//     carry 0x2000 until it closes; Disarm can't reach it.
//   - A socket with a mark of its own is never re-marked: the gate is then
//     untied (Tied reports false, WhyUntied says why), as it is without
//     sockets or without the kernel's socket expression (Linux 5.1).
//     A server that sets SO_MARK 0x2000 itself is taken for ours.
//   - Kernels with commit 039b1f4f24ec (2019) but without its fix
//     8b26ff7af8c3 (CVE-2024-46855, September 2024; in 6.6 and 5.15 stable
//     since autumn 2024) leak a reference to each TIME_WAIT or request
//     socket that "socket mark" meets, so those sockets are never freed.
//
// An untied rule cannot see the socket. If the listener closes while armed,
// the rule stays, and the port keeps refusing connections, to that
// listener's successor too, until Disarm runs or someone deletes the table
// (nft delete table inet sockdrain). An armed untied gate is not fail-safe;
// neither is a tied one while the server keeps its listener open.
//
// Processes that arm and disarm different listeners at once are safe: the
// batch that deletes the table marks the deletion non-recursive, so the
// kernel aborts it if another process's rule arrived since Disarm looked,
// and Disarm then deletes its own rules only. Two processes that arm the
// same listener at once may add its rule twice; Disarm deletes both.
package nftgate

// Package nftgate is the gate built from one nftables rule, for Linux
// kernels where BPF is not available. It lives in directory
// sockdrain/gate/nftables but is named nftgate, so that it never shares a
// name with github.com/google/nftables, the netlink client it is built on.
// It never runs the nft command.
//
// # What it makes
//
// In the listener's network namespace, one table of ours, "inet
// sockdrain", holds one base chain, "input": type filter, hook input,
// priority -150 (mangle; see ChainPriority for why), policy accept. Each
// armed listener adds one rule to it, the equivalent of
//
//	nft add rule inet sockdrain input [ip|ip6 daddr A] tcp dport P \
//		tcp flags & (syn|ack) == syn reject with tcp reset comment "KEY"
//
// where KEY is gate.Listener.Key(); a later process finds the rule by it.
// The address match depends on the listener:
//
//   - a specific address (127.0.0.1:P, [::1]:P): that address only, so other
//     addresses on the same port keep accepting;
//   - an IPv4-mapped IPv6 address ([::ffff:A]:P): IPv4 address A;
//   - 0.0.0.0:P: every IPv4 address;
//   - [::]:P: every IPv6 and IPv4 address, as a dual-stack socket receives
//     both, unless the socket says IPV6_V6ONLY or the caller uses OpenV6Only.
//
// A wildcard gate also refuses SYNs to more specific listeners on the same
// port, such as an SO_REUSEPORT sibling bound to one address.
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
// The rule cannot see the socket. If the listener closes while armed, the
// rule stays, and the port keeps refusing connections, to that listener's
// successor too, until Disarm runs or someone deletes the table (nft
// delete table inet sockdrain). An armed gate is not fail-safe.
//
// Processes that arm and disarm different listeners at once are safe: the
// batch that deletes the table marks the deletion non-recursive, so the
// kernel aborts it if another process's rule arrived since Disarm looked,
// and Disarm then deletes its own rules only. Two processes that arm the
// same listener at once may add its rule twice; Disarm deletes both.
package nftgate

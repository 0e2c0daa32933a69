//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// The sk_lookup gate: an SK_LOOKUP program that drops TCP lookups for one
// listening address while the gate is armed and, when tied, while the
// drained listener is still open or was seen open within grace_ns.

#include "common.h"

// Sockets of the drained listener kept in the sd_listeners map; a reuseport
// group larger than this is tied to its first MAX_LISTENERS sockets.
#define MAX_LISTENERS 64

char __license[] SEC("license") = "Dual MIT/GPL";

// What to refuse, written by user space.
struct gate_config {
	__u32 ip6[4]; // local IPv6 address, network order; all zero: any
	__u32 ip4;    // local IPv4 address, network order; zero: any
	__u32 port;   // local port, host order
	__u8 v4;      // refuse IPv4 lookups
	__u8 v6;      // refuse IPv6 lookups
	__u8 tied;    // refuse only while a socket in sd_listeners is open, and grace_ns after
	__u8 armed;   // refuse at all
	// Tied: how long to go on refusing after a lookup last found a socket
	// in sd_listeners. A closing socket leaves the SOCKMAP (sock_map_close)
	// before TCP unhashes it, so for a few microseconds the listener still
	// takes SYNs the gate no longer refuses, and resets them as it closes.
	// Refusing for a while after the listener was last seen open closes that
	// window whenever SYNs keep coming.
	__u64 grace_ns;
	__u64 seen_open_ns; // bpf_ktime_get_ns of that lookup; written here
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gate_config);
} sd_config SEC(".maps");

// The drained listener's sockets. The kernel removes an entry when its
// socket closes, so a server restarted on the same port is never refused.
// Sizes, not BTF types: the kernel refuses a SOCKMAP with BTF key and
// value types, and the loader then creates it again without them; the
// failed create frees its map after an RCU grace period, 10-20 ms that
// every load would spend before the gate refuses anything.
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, MAX_LISTENERS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
} sd_listeners SEC(".maps");

static __attribute__((always_inline)) int is_any6(const __u32 *a)
{
	return !(a[0] | a[1] | a[2] | a[3]);
}

static __attribute__((always_inline)) int addr_matches(struct bpf_sk_lookup *ctx, struct gate_config *c)
{
	if (ctx->family == AF_INET)
		return c->v4 && (!c->ip4 || c->ip4 == ctx->local_ip4);
	if (ctx->family != AF_INET6 || !c->v6)
		return 0;
	if (is_any6(c->ip6))
		return 1;
	return c->ip6[0] == ctx->local_ip6[0] && c->ip6[1] == ctx->local_ip6[1] &&
	       c->ip6[2] == ctx->local_ip6[2] && c->ip6[3] == ctx->local_ip6[3];
}

// probe_slot stops bpf_loop at the first slot that holds a socket.
static long probe_slot(__u32 i, void *open)
{
	struct bpf_sock *sk = bpf_map_lookup_elem(&sd_listeners, &i);
	if (!sk)
		return 0;
	bpf_sk_release(sk);
	*(int *)open = 1;
	return 1;
}

static __attribute__((always_inline)) int listener_open(void)
{
	int open = 0;
	bpf_loop(MAX_LISTENERS, probe_slot, &open, 0);
	return open;
}

SEC("sk_lookup")
int sd_refuse_lookup(struct bpf_sk_lookup *ctx)
{
	__u32 key = 0;
	struct gate_config *c = bpf_map_lookup_elem(&sd_config, &key);
	if (!c || !c->armed || ctx->protocol != IPPROTO_TCP || ctx->local_port != c->port)
		return SK_PASS;
	if (!addr_matches(ctx, c))
		return SK_PASS;
	if (c->tied) {
		__u64 now = bpf_ktime_get_ns();
		if (listener_open())
			c->seen_open_ns = now;
		else if (now - c->seen_open_ns >= c->grace_ns)
			return SK_PASS;
	}
	return SK_DROP;
}

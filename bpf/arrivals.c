//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// Arrivals: counts the TCP connections that arrive on one local port of one
// network namespace, from the kernel's inet_sock_set_state tracepoint. A
// drain reads the count before it walks the port's sockets and again when
// it has looked up the sockets it knows: if the count has not moved, no
// connection arrived unseen, and the lookups are the whole truth.

#include "common.h"
#include <bpf/bpf_core_read.h>

char __license[] SEC("license") = "Dual MIT/GPL";

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3

// What to count, set by user space before the load.
volatile const __u16 port;      // the local port, in host order
volatile const __u32 netns_ino; // the network namespace's inode

// The few kernel fields read, relocated against the running kernel's BTF.
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct sock_common {
	unsigned short skc_num;
	possible_net_t skc_net;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

// sd_arrivals[0] is the count.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sd_arrivals SEC(".maps");

// A connection arrives as a new socket in SYN_RECV: the child a listener
// makes when a handshake completes, with or without a SYN cookie. A socket
// that connects from the port (SYN_SENT to ESTABLISHED) counts too.
SEC("tp_btf/inet_sock_set_state")
int sd_count_arrival(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int oldstate = (int)ctx[1];
	int newstate = (int)ctx[2];
	if (newstate != TCP_SYN_RECV && !(oldstate == TCP_SYN_SENT && newstate == TCP_ESTABLISHED))
		return 0;
	if (BPF_CORE_READ(sk, __sk_common.skc_num) != port)
		return 0;
	if (BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) != netns_ino)
		return 0;
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&sd_arrivals, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

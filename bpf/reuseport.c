//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// The reuseport gate: an SK_REUSEPORT program that drops new connections
// to its reuseport group while the armed flag is set, and a TCP iterator
// that reports which reuseport program a listening socket's group runs.

#include "common.h"
#include "task_file.h"
#include <bpf/bpf_core_read.h>

#define TCP_FLAGS_OFFSET 13
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10
#define TCP_LISTEN 10

char __license[] SEC("license") = "Dual MIT/GPL";

// sd_armed[0] != 0 makes the program refuse pure SYNs.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sd_armed SEC(".maps");

// ctx->data points at the TCP header when the kernel picks a listener
// for a TCP segment. Only a pure SYN (SYN without ACK) is dropped, so the
// final ACK of a SYN-cookie handshake still reaches the listener.
SEC("sk_reuseport")
int sd_refuse_syn(struct sk_reuseport_md *ctx)
{
	__u32 key = 0;
	__u32 *on = bpf_map_lookup_elem(&sd_armed, &key);
	if (!on || !*on || ctx->ip_protocol != IPPROTO_TCP)
		return SK_PASS;

	__u8 *data = ctx->data;
	if (data + TCP_FLAGS_OFFSET + 1 > (__u8 *)ctx->data_end)
		return SK_PASS;
	__u8 flags = data[TCP_FLAGS_OFFSET];
	if ((flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		return SK_DROP;
	return SK_PASS;
}

// Kernel types, relocated against the running kernel's BTF.
struct bpf_prog_aux {
	__u32 id;
} __attribute__((preserve_access_index));

struct bpf_prog {
	struct bpf_prog_aux *aux;
} __attribute__((preserve_access_index));

struct sock_reuseport {
	struct bpf_prog *prog;
} __attribute__((preserve_access_index));

struct sock_common {
	unsigned char skc_state;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	struct sock_reuseport *sk_reuseport_cb;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

// The inode of the listening socket to report on, set before the load.
volatile const __u64 sock_ino;

// The record for that socket.
struct listener_prog {
	__u64 inode;      // the socket's inode
	__u32 in_group;   // 1 if the socket belongs to a reuseport group
	__u32 has_prog;   // 1 if that group runs a program, classic or eBPF
	__u32 prog_id;    // the program's id; 0 for a classic BPF program
	__u32 listening;  // 1 if the socket is a listener
};

// A task_file iterator that reports the reuseport program of the group of
// the socket whose inode is sock_ino. User space limits the walk to its
// own descriptors, among them a duplicate of that socket (Linux 6.1;
// older kernels walk every process's, and find it all the same).
// Only the thread-group leader's table is read: limited to one process,
// kernels before 6.6 also walk each thread that shares the leader's table
// (the skip_if_dup_files check fixed by c12e785e8648), repeating records.
SEC("iter/task_file")
int sd_reuseport_progs(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	if (!task || task->pid != task->tgid)
		return 0;
	if (!file || BPF_CORE_READ(file, f_inode, i_ino) != sock_ino ||
	    BPF_CORE_READ(file, f_inode, i_sb, s_magic) != SOCKFS_MAGIC)
		return 0;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;

	struct listener_prog out = {.inode = sock_ino};
	out.listening = BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_LISTEN;
	struct sock_reuseport *reuse = BPF_CORE_READ(sk, sk_reuseport_cb);
	if (reuse) {
		out.in_group = 1;
		struct bpf_prog *prog = BPF_CORE_READ(reuse, prog);
		if (prog) {
			out.has_prog = 1;
			out.prog_id = BPF_CORE_READ(prog, aux, id);
		}
	}
	bpf_seq_write(ctx->meta->seq, &out, sizeof(out));
	return 0;
}

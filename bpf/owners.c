//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// Owners of sockets: a task_file iterator that walks every open file of
// every process in the kernel and writes (inode, pid, fd) for each socket
// whose inode user space put in sd_inodes. It replaces reading every
// /proc/PID/fd/* link, which costs a syscall and a path per descriptor.

#include "common.h"
#include "task_file.h"

char __license[] SEC("license") = "Dual MIT/GPL";

// The socket inodes to find, written by user space.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} sd_inodes SEC(".maps");

// One descriptor that refers to a wanted socket.
struct owner {
	__u64 inode;
	__u32 pid; // thread group id, in the initial pid namespace
	__u32 fd;
};

SEC("iter/task_file")
int sd_find_owners(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	if (!task || !file)
		return 0;
	__u64 ino = file->f_inode->i_ino;
	if (!bpf_map_lookup_elem(&sd_inodes, &ino))
		return 0;
	if (file->f_inode->i_sb->s_magic != SOCKFS_MAGIC)
		return 0;
	struct owner o = {.inode = ino, .pid = task->tgid, .fd = ctx->fd};
	bpf_seq_write(ctx->meta->seq, &o, sizeof(o));
	return 0;
}

//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// Owners of sockets: iterators that walk every open file of every process
// in the kernel and write (inode, pid, fd) for each socket whose inode
// user space put in sd_inodes. They replace reading every /proc/PID/fd/*
// link, which costs a syscall and a path per descriptor.
//
// sd_scan_tables (Linux 5.17, for bpf_loop) visits each process once and
// reads its descriptor table itself: three loads per descriptor. The
// task_file iterator, sd_find_owners (Linux 5.8), is its fallback: it
// takes and drops a reference on every file, several times the cost.

#include "common.h"
#include "task_file.h"
#include <bpf/bpf_core_read.h>

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

// bpf_loop's bound (BPF_MAX_LOOPS). A larger table is reported with an
// owner of inode 0, and user space falls back to sd_find_owners.
#define MAX_LOOPS (1 << 23)

struct table_scan {
	struct seq_file *seq;
	struct file **fd;
	__u32 pid;
};

static long scan_slot(__u64 i, void *data)
{
	struct table_scan *t = data;
	struct file *file;
	if (bpf_probe_read_kernel(&file, sizeof(file), &t->fd[i]) || !file)
		return 0;
	__u64 ino = BPF_CORE_READ(file, f_inode, i_ino);
	if (!bpf_map_lookup_elem(&sd_inodes, &ino))
		return 0;
	if (BPF_CORE_READ(file, f_inode, i_sb, s_magic) != SOCKFS_MAGIC)
		return 0;
	struct owner o = {.inode = ino, .pid = t->pid, .fd = i};
	bpf_seq_write(t->seq, &o, sizeof(o));
	return 0;
}

// The iterator runs under RCU, which keeps a descriptor table (freed
// through RCU) readable; every read is a probe read, so a process exiting
// meanwhile costs at most a stale answer, never a fault.
SEC("iter/task")
int sd_scan_tables(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task)
		return 0;
	struct files_struct *files = BPF_CORE_READ(task, files);
	// A thread shares its leader's table unless it unshared it.
	if (!files || (task->pid != task->tgid && files == BPF_CORE_READ(task, group_leader, files)))
		return 0;
	struct fdtable *fdt = BPF_CORE_READ(files, fdt);
	struct table_scan t = {.seq = ctx->meta->seq, .fd = BPF_CORE_READ(fdt, fd), .pid = task->tgid};
	__u32 n = BPF_CORE_READ(fdt, max_fds);
	if (n > MAX_LOOPS || bpf_loop(n, scan_slot, &t, 0) < 0) {
		struct owner o = {.pid = task->tgid, .fd = n};
		bpf_seq_write(ctx->meta->seq, &o, sizeof(o));
	}
	return 0;
}

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// What the task and task_file iterators read of the kernel, relocated
// against the running kernel's BTF: the iterated task, its descriptor
// table and files, and whether a file is a socket. owners.c and
// reuseport.c include it.

#pragma once

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *group_leader;
	struct files_struct *files;
} __attribute__((preserve_access_index));

struct super_block {
	unsigned long s_magic;
} __attribute__((preserve_access_index));

struct inode {
	unsigned long i_ino;
	struct super_block *i_sb;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	void *private_data; // a socket's struct socket
} __attribute__((preserve_access_index));

struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
} __attribute__((preserve_access_index));

// SOCKFS_MAGIC from linux/magic.h: the inode belongs to a socket, not to a
// file of another file system that happens to share its number.
#define SOCKFS_MAGIC 0x534F434B

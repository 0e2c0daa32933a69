// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// What a task_file iterator reads of the kernel, relocated against the
// running kernel's BTF: the iterated task and file, and whether the file
// is a socket. owners.c and reuseport.c include it.

#pragma once

struct task_struct {
	int pid;
	int tgid;
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

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
} __attribute__((preserve_access_index));

// SOCKFS_MAGIC from linux/magic.h: the inode belongs to a socket, not to a
// file of another file system that happens to share its number.
#define SOCKFS_MAGIC 0x534F434B

// Package arrivals counts the TCP connections that arrive on one port of
// one network namespace, with a BPF program on the kernel's
// inet_sock_set_state tracepoint (tp_btf: Linux 5.5, with BTF). A drain
// whose gate refuses reads the count to know that the connections it
// already knows are all there are, without walking every socket of the
// host.
package arrivals

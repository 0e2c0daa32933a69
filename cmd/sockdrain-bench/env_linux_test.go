package main

import "testing"

func TestNetstatField(t *testing.T) {
	const text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n" +
		"TcpExt: 3 17 21\n" +
		"IpExt: InNoRoutes ListenDrops\n" +
		"IpExt: 5 99\n"
	if v, err := netstatField(text, "TcpExt", "ListenDrops"); err != nil || v != 21 {
		t.Errorf("TcpExt ListenDrops = %d, %v; want 21", v, err)
	}
	if v, err := netstatField(text, "IpExt", "ListenDrops"); err != nil || v != 99 {
		t.Errorf("IpExt ListenDrops = %d, %v; want 99", v, err)
	}
	if _, err := netstatField(text, "TcpExt", "Missing"); err == nil {
		t.Error("a missing counter gave no error")
	}
	if _, err := netstatField("TcpExt: A B\nTcpExt: 1\n", "TcpExt", "B"); err == nil {
		t.Error("a value line shorter than its names gave no error")
	}
}

func TestDevRxPackets(t *testing.T) {
	const text = "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"    lo: 2366427   46357    0    0    0     0          0         0  2366427   46357    0    0    0     0       0          0\n" +
		"  eth0:       5       1    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n"
	if v, err := devRxPackets(text, "lo"); err != nil || v != 46357 {
		t.Errorf("lo rx packets = %d, %v; want 46357", v, err)
	}
	if v, err := devRxPackets(text, "eth0"); err != nil || v != 1 {
		t.Errorf("eth0 rx packets = %d, %v; want 1", v, err)
	}
	if _, err := devRxPackets(text, "ifb0"); err == nil {
		t.Error("a missing device gave no error")
	}
}

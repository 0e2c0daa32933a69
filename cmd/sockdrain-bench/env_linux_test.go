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

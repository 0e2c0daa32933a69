package sklookup

import (
	"net/netip"
	"testing"
)

func TestConfigFor(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		facts  socketFacts
		v4, v6 uint8
		any    bool
	}{
		{"127.0.0.1:80", socketFacts{tied: true}, 1, 0, false},
		{"0.0.0.0:80", socketFacts{}, 1, 0, true},
		{"[::]:80", socketFacts{}, 1, 1, true},
		{"[::]:80", socketFacts{v6only: true}, 0, 1, true},
		{"[::1]:80", socketFacts{}, 0, 1, false},
		{"[::ffff:10.0.0.1]:80", socketFacts{}, 1, 0, false},
	} {
		cfg := configFor(netip.MustParseAddrPort(tc.addr), tc.facts)
		any := cfg.Ip4 == 0 && cfg.Ip6 == [4]uint32{}
		if cfg.V4 != tc.v4 || cfg.V6 != tc.v6 || any != tc.any || cfg.Port != 80 || (cfg.Tied == 1) != tc.facts.tied {
			t.Errorf("configFor(%s, %+v) = %+v", tc.addr, tc.facts, cfg)
		}
	}
	cfg := configFor(netip.MustParseAddrPort("10.1.2.3:1"), socketFacts{})
	if b := [4]byte{byte(cfg.Ip4), byte(cfg.Ip4 >> 8), byte(cfg.Ip4 >> 16), byte(cfg.Ip4 >> 24)}; b != [4]byte{10, 1, 2, 3} {
		t.Errorf("ip4 bytes in memory = %v, want network order 10.1.2.3", b)
	}
}

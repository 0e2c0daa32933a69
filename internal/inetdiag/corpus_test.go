package inetdiag

import (
	"bytes"
	"flag"
	"net/netip"
	"testing"

	"github.com/sockdrain/sockdrain/internal/testutil/seedcorpus"
	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz/FuzzParseMessage from seeds")

// seeds are FuzzParseMessage's committed corpus: a message of each kind a
// drain reads, and the malformed ones the parser must refuse.
func seeds() map[string][]byte {
	ap := netip.MustParseAddrPort
	lo, peer := ap("127.0.0.1:8080"), ap("127.0.0.1:40000")
	cubic := attr(4, 'c', 'u', 'b', 'i', 'c', 0)
	good := message(observe.Listen, ap("127.0.0.1:1"), netip.AddrPort{}, 0, 0, 0)
	s := map[string][]byte{
		"listen-ipv4":        message(observe.Listen, lo, netip.AddrPort{}, 7, 4096, 99),
		"listen-dual-stack":  message(observe.Listen, ap("[::]:80"), ap("[::]:0"), 0, 128, 5, attr(attrSKV6Only, 0)),
		"listen-ipv6-only":   message(observe.Listen, ap("[::1]:80"), ap("[::]:0"), 3, 128, 6, attr(attrSKV6Only, 1)),
		"syn-recv":           message(observe.NewSynRecv, lo, peer, 0, 0, 0),
		"established-queued": message(observe.Established, lo, peer, 0, 0, 0, attr(5, 0), cubic),
		"established-served": message(observe.Established, ap("[2001:db8::1]:443"), ap("[2001:db8::2]:50000"), 12, 0, 77),
		"close-wait":         message(observe.CloseWait, lo, peer, 1, 0, 78),
		"fin-wait1-unacked":  message(observe.FinWait1, lo, peer, 0, 1448, 0, attr(5, 0), attr(attrSKV6Only, 1), cubic),
		"flagged-attribute":  append(bytes.Clone(good), 5, 0, 0x0b, 0x80, 1, 0, 0, 0), // NLA_F_NESTED on v6only
		"truncated":          good[:71],
		"unknown-family":     append([]byte{1}, good[1:]...),
		"attribute-overruns": append(bytes.Clone(good), 200, 0, 11, 0, 1),
		"attribute-length-0": append(bytes.Clone(good), 0, 0, 11, 0),
		"attribute-header-3": append(bytes.Clone(good), 5, 0, 11),
	}
	return s
}

// TestSeedCorpus checks that the committed corpus is what seeds makes
// now; go test -run TestSeedCorpus -update rewrites it.
func TestSeedCorpus(t *testing.T) {
	seedcorpus.Check(t, "FuzzParseMessage", seeds(), *update)
}

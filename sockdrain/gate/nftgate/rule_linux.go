package nftgate

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// TableName and ChainName name the table and base chain the gate makes.
// TiedChainName names the regular chain that tied rules jump to.
const (
	TableName     = "sockdrain"
	ChainName     = "input"
	TiedChainName = "tied"
)

// SocketMark is the SO_MARK a tied gate puts on the listener's sockets, and
// the mark its rule refuses SYNs for. Connections accepted from a marked
// listener inherit it (see the package doc). Its one bit is outside the
// marks kube-proxy (0x4000, 0x8000), Cilium (0x0f00), Calico (0xffff0000),
// Tailscale (0xff0000) and Istio (0x539) use.
const SocketMark = 0x2000

// tiedComment marks the fixed rules of the tied chain.
const tiedComment = "sockdrain tied"

// ChainPriority is the input chain's priority: mangle (-150). It runs after
// defragmentation (-400) and conntrack (-200), so every SYN it sees is whole
// and tracked, and before every filter-priority chain (0: nft filter tables,
// iptables-nft, firewalld, docker), so no user rule can drop a SYN we mean to
// refuse and turn the client's RST into a timeout.
const ChainPriority = -150

// TCP header offsets and flags the rule matches on.
const (
	tcpDportOffset = 2
	tcpFlagsOffset = 13
	tcpFlagSYN     = 0x02
	tcpFlagACK     = 0x10
)

// Destination address offsets in the IPv4 and IPv6 headers.
const (
	ip4DaddrOffset = 16
	ip6DaddrOffset = 24
)

// table is the gate's table: inet, so one chain sees IPv4 and IPv6.
func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}

// chain is the gate's base chain, hooked at input with policy accept: it
// only ever refuses what a rule matches.
func chain(t *nftables.Table) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name:     ChainName,
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookInput,
		Priority: nftables.ChainPriorityRef(ChainPriority),
		Policy:   &accept,
	}
}

// family says which IP families a rule refuses.
type family int

const (
	familyIPv4 family = iota + 1
	familyIPv6
	familyBoth
)

// match is what one listener's rule refuses: pure SYNs to port, on the
// families in fam, to addr unless addr is unspecified.
type match struct {
	fam  family
	addr netip.Addr
	port uint16
}

// matchFor is the match for a listener on ap. An IPv4-mapped IPv6 address
// receives IPv4 packets, so it matches as IPv4. A wildcard IPv6 listener
// also receives IPv4 unless v6only.
func matchFor(ap netip.AddrPort, v6only bool) match {
	a := ap.Addr().Unmap()
	m := match{fam: familyIPv4, addr: a, port: ap.Port()}
	if a.Is6() {
		m.fam = familyIPv6
	}
	if a.IsUnspecified() {
		m.addr = netip.Addr{}
		if a.Is6() && !v6only {
			m.fam = familyBoth
		}
	}
	return m
}

// exprs builds the untied rule: [nfproto] [daddr] l4proto tcp, dport,
// flags & (syn|ack) == syn, reject with tcp reset. It is the expression
// list that `nft add rule inet sockdrain input ip daddr A tcp dport P tcp
// flags & (syn|ack) == syn reject with tcp reset` compiles to.
func (m match) exprs() []expr.Any {
	return append(m.synExprs(), reject())
}

// tiedExprs builds the tied rule: the same match, then jump tied, which
// decides by the socket the SYN would reach.
func (m match) tiedExprs() []expr.Any {
	return append(m.synExprs(), &expr.Verdict{Kind: expr.VerdictJump, Chain: TiedChainName})
}

func (m match) synExprs() []expr.Any {
	var e []expr.Any
	e = append(e, m.familyExprs()...)
	e = append(e, m.addrExprs()...)
	e = append(e, metaEq(expr.MetaKeyL4PROTO, []byte{unix.IPPROTO_TCP})...)
	e = append(e, payloadEq(tcpDportOffset, binary.BigEndian.AppendUint16(nil, m.port))...)
	return append(e, pureSYN()...)
}

func reject() expr.Any { return &expr.Reject{Type: unix.NFT_REJECT_TCP_RST} }

// isTied reports whether r is a tied rule: one that jumps instead of
// rejecting.
func isTied(r *nftables.Rule) bool {
	if len(r.Exprs) == 0 {
		return false
	}
	_, rejects := r.Exprs[len(r.Exprs)-1].(*expr.Reject)
	return !rejects
}

// tiedChainRules are the tied chain's rules, in order. The socket
// expression looks the SYN's socket up as TCP will: an established or
// TIME_WAIT socket of its 4-tuple, else the listener.
//
//	socket mark 0x2000 reject with tcp reset  # a listener we marked
//	socket mark return                        # any other full socket
//	socket transparent reject with tcp reset  # TIME_WAIT or request socket
//
// "socket mark" does not match TIME_WAIT and request sockets (not full
// sockets), so they reach the third rule. A SYN that finds no socket
// matches none, and TCP answers it with a RST itself.
func tiedChainRules() [][]expr.Any {
	load := func(k expr.SocketKey) *expr.Socket { return &expr.Socket{Key: k, Register: 1} }
	mark := binary.NativeEndian.AppendUint32(nil, SocketMark)
	return [][]expr.Any{
		{load(expr.SocketKeyMark), &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark}, reject()},
		{load(expr.SocketKeyMark), &expr.Verdict{Kind: expr.VerdictReturn}},
		{load(expr.SocketKeyTransparent), reject()},
	}
}

func (m match) familyExprs() []expr.Any {
	switch m.fam {
	case familyIPv4:
		return metaEq(expr.MetaKeyNFPROTO, []byte{unix.NFPROTO_IPV4})
	case familyIPv6:
		return metaEq(expr.MetaKeyNFPROTO, []byte{unix.NFPROTO_IPV6})
	}
	return nil
}

func (m match) addrExprs() []expr.Any {
	if !m.addr.IsValid() {
		return nil
	}
	off := uint32(ip4DaddrOffset)
	if m.addr.Is6() {
		off = ip6DaddrOffset
	}
	b := m.addr.AsSlice()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(len(b))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

func metaEq(key expr.MetaKey, want []byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: want},
	}
}

func payloadEq(off uint32, want []byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: uint32(len(want))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: want},
	}
}

// pureSYN matches a SYN without ACK: a new connection, never the ACK that
// completes a SYN-cookie handshake.
func pureSYN() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: tcpFlagsOffset, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{tcpFlagSYN | tcpFlagACK}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{tcpFlagSYN}},
	}
}

// comment is the rule's user data: key as an nft comment, so `nft list
// table inet sockdrain` shows which listener each rule gates.
func comment(key string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, key)
}

// commentOf is the comment in a rule's user data, or "". It walks the
// type-length-value records itself, so a malformed record from another
// tool ends the walk instead of panicking.
func commentOf(ud []byte) string {
	for len(ud) >= 2 {
		typ, n := userdata.Type(ud[0]), int(ud[1])
		if len(ud) < 2+n {
			return ""
		}
		if typ == userdata.TypeComment {
			return strings.TrimSuffix(string(ud[2:2+n]), "\x00")
		}
		ud = ud[2+n:]
	}
	return ""
}

// tiedChain is the regular chain tied rules jump to.
func tiedChain(t *nftables.Table) *nftables.Chain {
	return &nftables.Chain{Name: TiedChainName, Table: t}
}

package nftgate

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// Gate is one listener's nftables rule. Its methods are safe for
// concurrent use.
type Gate struct {
	mu     sync.Mutex
	conn   *nftables.Conn
	raw    *netlink.Conn // for what conn can't say; see dropTable
	closed bool
	key    string
	match  match
}

var _ gate.Gate = (*Gate)(nil)

// Open finds or prepares the gate for l without changing any rule. A nil
// l.NetNS means the caller's own namespace.
//
// For a wildcard IPv6 listener ([::]:P) the rule also refuses IPv4, as a
// dual-stack socket receives both, unless l.Sockets holds the socket and
// it says IPV6_V6ONLY. Use OpenV6Only when the caller knows the listener
// is IPv6-only but has no socket.
func Open(l gate.Listener) (*Gate, error) {
	v6only, err := socketV6Only(l)
	if err != nil {
		return nil, fmt.Errorf("open nftables gate %s: %w", l.Addr, err)
	}
	return open(l, v6only)
}

// OpenV6Only is Open for a wildcard IPv6 listener known to be IPv6-only:
// its rule leaves IPv4 alone. For any other listener it is Open.
func OpenV6Only(l gate.Listener) (*Gate, error) {
	return open(l, true)
}

func open(l gate.Listener, v6only bool) (*Gate, error) {
	if !l.Addr.IsValid() || l.Addr.Port() == 0 {
		return nil, fmt.Errorf("open nftables gate: listener address %q has no port", l.Addr)
	}
	var nsfd int
	if l.NetNS != nil {
		nsfd = int(l.NetNS.Fd())
	}
	conn, err := nftables.New(nftables.WithNetNSFd(nsfd), nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("open nftables gate %s: dial nf_tables: %w", l.Addr, err)
	}
	raw, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsfd})
	if err != nil {
		conn.CloseLasting()
		return nil, fmt.Errorf("open nftables gate %s: dial nf_tables: %w", l.Addr, err)
	}
	return &Gate{conn: conn, raw: raw, key: l.Key(), match: matchFor(l.Addr, v6only)}, nil
}

// socketV6Only reports whether l is a wildcard IPv6 listener whose first
// socket has IPV6_V6ONLY set.
func socketV6Only(l gate.Listener) (bool, error) {
	a := l.Addr.Addr()
	if !a.Is6() || !a.IsUnspecified() || len(l.Sockets) == 0 {
		return false, nil
	}
	rc, err := l.Sockets[0].SyscallConn()
	if err != nil {
		return false, fmt.Errorf("read IPV6_V6ONLY: %w", err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		v, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
	}); err != nil {
		return false, fmt.Errorf("read IPV6_V6ONLY: %w", err)
	}
	if serr != nil {
		return false, os.NewSyscallError("getsockopt IPV6_V6ONLY", serr)
	}
	return v != 0, nil
}

// Arm adds the listener's rule, and the table and chain if they are
// missing, in one batch: on error nothing was added. Arming an armed gate
// does nothing.
func (g *Gate) Arm() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, err := g.state()
	if err != nil {
		return fmt.Errorf("arm nftables gate %s: %w", g.key, err)
	}
	if len(st.ours) > 0 {
		return nil
	}
	t := g.conn.AddTable(table())
	c := g.conn.AddChain(chain(t))
	g.conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: g.match.exprs(), UserData: comment(g.key)})
	if err := g.conn.Flush(); err != nil {
		return fmt.Errorf("arm nftables gate %s: add rule: %w", g.key, err)
	}
	return nil
}

// Disarm deletes the listener's rules in one batch. When nothing else is
// left in the table, the same batch deletes the chain and the table; the
// kernel checks that atomically, so a rule another process adds meanwhile
// is never deleted with them.
func (g *Gate) Disarm() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, err := g.state()
	if err != nil {
		return fmt.Errorf("disarm nftables gate %s: %w", g.key, err)
	}
	if err := g.remove(st); err != nil {
		return fmt.Errorf("disarm nftables gate %s: %w", g.key, err)
	}
	return nil
}

// remove deletes the rules in st.ours, and the table with them when st
// says nothing else is in it. If the kernel finds the table no longer
// empty, another process armed a rule since st was read: then remove
// deletes our rules only.
func (g *Gate) remove(st state) error {
	if st.onlyOurs() {
		err := dropTable(g.raw, st.ours)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("delete table: %w", err)
		}
	}
	if len(st.ours) == 0 {
		return nil
	}
	for _, r := range st.ours {
		if err := g.conn.DelRule(r); err != nil {
			return fmt.Errorf("delete rule %d: %w", r.Handle, err)
		}
	}
	if err := g.conn.Flush(); err != nil {
		return fmt.Errorf("delete rules: %w", err)
	}
	return nil
}

// Armed reports whether the listener's rule is in place.
func (g *Gate) Armed() (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, err := g.state()
	if err != nil {
		return false, fmt.Errorf("read nftables gate %s: %w", g.key, err)
	}
	return len(st.ours) > 0, nil
}

// Close releases the netlink socket. The rule, if armed, stays. The Gate
// can't be used after Close.
func (g *Gate) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	if err := errors.Join(g.conn.CloseLasting(), g.raw.Close()); err != nil {
		return fmt.Errorf("close nftables gate %s: %w", g.key, err)
	}
	return nil
}

// state is what the gate's table holds now.
type state struct {
	present bool             // our table and chain exist
	chains  int              // chains in our table
	ours    []*nftables.Rule // rules with our key
	others  int              // other rules in our chain
}

// onlyOurs reports whether deleting the table deletes nothing but rules of
// this gate (or nothing at all).
func (st state) onlyOurs() bool {
	return st.present && st.chains == 1 && st.others == 0
}

func (g *Gate) state() (state, error) {
	var st state
	if g.closed {
		return st, os.ErrClosed
	}
	chains, err := g.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return st, fmt.Errorf("list chains: %w", err)
	}
	for _, c := range chains {
		if c.Table.Name == TableName {
			st.chains++
			st.present = st.present || c.Name == ChainName
		}
	}
	if !st.present {
		return st, nil
	}
	t := table()
	rules, err := g.conn.GetRules(t, chain(t))
	if err != nil {
		return st, fmt.Errorf("list rules: %w", err)
	}
	for _, r := range rules {
		if commentOf(r.UserData) == g.key {
			st.ours = append(st.ours, r)
		} else {
			st.others++
		}
	}
	return st, nil
}

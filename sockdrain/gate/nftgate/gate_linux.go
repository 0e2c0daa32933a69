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
	socks  []*os.File // the listener's sockets, not ours to close
	// untied is why Arm can't tie the rule to socks, or nil; known once
	// tieChecked (see whyUntied).
	untied     error
	tieChecked bool
}

var _ gate.Gate = (*Gate)(nil)

// Open finds or prepares the gate for l without changing any rule. A nil
// l.NetNS means the caller's own namespace.
//
// With l.Sockets, the gate is tied to them (see Tied), unless they carry
// a mark of their own or refuse SO_MARK. The Gate uses them until Close;
// it does not close them.
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
	untied := tieable(l.Sockets)
	g := &Gate{conn: conn, raw: raw, key: l.Key(), match: matchFor(l.Addr, v6only),
		socks: l.Sockets, untied: untied, tieChecked: untied != nil}
	// Reading the gate's chains checks that this process may use
	// nf_tables here, and that the kernel has it.
	if _, err := g.state(); err != nil {
		g.Close()
		return nil, fmt.Errorf("open nftables gate %s: %w", l.Addr, notSupported(err))
	}
	return g, nil
}

// Tied reports whether Arm ties the rule to the listener's sockets: it
// marks them, and the rule refuses only SYNs whose listener carries the
// mark, so a new listener on the same address and port is never refused.
// An untied rule refuses every SYN to the address and port until Disarm.
func (g *Gate) Tied() bool { return g.WhyUntied() == nil }

// WhyUntied says why the gate is not tied, or nil when it is.
func (g *Gate) WhyUntied() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.whyUntied()
}

// whyUntied is WhyUntied with g.mu held. The kernel's answer is asked on
// first use, not in Open: the batch that asks deletes the table it adds,
// and after a deletion the next close of a netfilter socket waits for an
// RCU grace period (the kernel flushes its deferred destruction), which a
// gate opened only to look at its rules should not pay.
func (g *Gate) whyUntied() error {
	if !g.tieChecked {
		g.untied, g.tieChecked = haveSocketMark(g.conn), true
	}
	return g.untied
}

// Warnings says when the gate is not tied to its listener.
func (g *Gate) Warnings() ([]string, error) {
	why := g.WhyUntied()
	if why == nil {
		return nil, nil
	}
	return []string{fmt.Sprintf("the nftables gate is not tied to the listener (%v): it stays until `sockdrain resume`, even after the server restarts", why)}, nil
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

// Arm adds the listener's rule, and the table and chains if they are
// missing, in one batch: on error nothing was added. A tied gate then
// marks the listener's sockets; if that fails, Arm deletes the rule it
// added. Arming an armed gate does nothing.
func (g *Gate) Arm() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, err := g.state()
	if err == nil && g.whyUntied() == nil {
		err = g.armTied(st)
	} else if err == nil {
		err = g.armUntied(st)
	}
	if err != nil {
		return fmt.Errorf("arm nftables gate %s: %w", g.key, notSupported(err))
	}
	return nil
}

func (g *Gate) armUntied(st state) error {
	if st.untied > 0 {
		return nil
	}
	t := g.conn.AddTable(table())
	c := g.conn.AddChain(chain(t))
	g.conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: g.match.exprs(), UserData: comment(g.key)})
	if err := g.conn.Flush(); err != nil {
		return fmt.Errorf("add rule: %w", err)
	}
	return nil
}

// armTied adds the tied rule, unless st has it, and then marks the
// sockets. In that order, no handshake begins on a marked listener before
// the rule refuses it, so no connection inherits the mark that way.
func (g *Gate) armTied(st state) error {
	if st.tied == 0 {
		if err := g.addTiedRule(st); err != nil {
			return err
		}
	}
	err := setMarks(g.socks, 0, SocketMark)
	if err == nil {
		return nil
	}
	err = errors.Join(fmt.Errorf("mark listening sockets: %w", err), setMarks(g.socks, SocketMark, 0))
	if st.tied == 0 {
		if now, serr := g.state(); serr == nil {
			err = errors.Join(err, g.remove(now))
		}
	}
	return err
}

// addTiedRule adds the tied rule, with the table and both chains when st
// lacks them, in one batch.
func (g *Gate) addTiedRule(st state) error {
	t := g.conn.AddTable(table())
	c := g.conn.AddChain(chain(t))
	if len(st.fixed) == 0 {
		tc := g.conn.AddChain(tiedChain(t))
		for _, e := range tiedChainRules() {
			g.conn.AddRule(&nftables.Rule{Table: t, Chain: tc, Exprs: e, UserData: comment(tiedComment)})
		}
	}
	g.conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: g.match.tiedExprs(), UserData: comment(g.key)})
	if err := g.conn.Flush(); err != nil {
		return fmt.Errorf("add tied rule: %w", err)
	}
	return nil
}

// Disarm takes the mark off the listener's sockets that carry it, then
// deletes the listener's rules in one batch. When nothing else is left in
// the table, the same batch deletes the chains and the table; the kernel
// checks that atomically, so a rule another process adds meanwhile is
// never deleted with them. Disarm works without sockets too: the rules
// carry the listener's key.
func (g *Gate) Disarm() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, err := g.state()
	if err != nil {
		return fmt.Errorf("disarm nftables gate %s: %w", g.key, err)
	}
	unmark := setMarks(g.socks, SocketMark, 0)
	if err := errors.Join(g.remove(st), unmark); err != nil {
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
		err := dropTable(g.raw, st)
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

// Armed reports whether the listener's rule is in place and refuses: an
// untied rule always does; a tied one while one of the gate's sockets
// carries the mark. Without sockets, a tied rule counts as armed: the gate
// can't tell whether its listener is still there.
func (g *Gate) Armed() (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, err := g.state()
	if err != nil {
		return false, fmt.Errorf("read nftables gate %s: %w", g.key, err)
	}
	switch {
	case st.untied > 0:
		return true, nil
	case st.tied > 0:
		return len(g.socks) == 0 || markedAny(g.socks), nil
	}
	return false, nil
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
	present   bool             // our table and input chain exist
	tiedChain bool             // our tied chain exists
	chains    int              // chains in our table
	ours      []*nftables.Rule // rules with our key
	tied      int              // of ours, those that jump to the tied chain
	untied    int              // of ours, those that reject
	fixed     []*nftables.Rule // the tied chain's own rules
	others    int              // other rules in our chains
}

// onlyOurs reports whether deleting the table deletes nothing but rules of
// this gate and the tied chain (or nothing at all).
func (st state) onlyOurs() bool {
	want := 1
	if st.tiedChain {
		want = 2
	}
	return st.present && st.chains == want && st.others == 0
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
			st.tiedChain = st.tiedChain || c.Name == TiedChainName
		}
	}
	if !st.present {
		return st, nil
	}
	if err := g.readInput(&st); err != nil {
		return st, err
	}
	return st, g.readTied(&st)
}

func (g *Gate) readInput(st *state) error {
	t := table()
	rules, err := g.conn.GetRules(t, chain(t))
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	for _, r := range rules {
		switch {
		case commentOf(r.UserData) != g.key:
			st.others++
		case isTied(r):
			st.ours, st.tied = append(st.ours, r), st.tied+1
		default:
			st.ours, st.untied = append(st.ours, r), st.untied+1
		}
	}
	return nil
}

func (g *Gate) readTied(st *state) error {
	if !st.tiedChain {
		return nil
	}
	t := table()
	rules, err := g.conn.GetRules(t, tiedChain(t))
	if err != nil {
		return fmt.Errorf("list tied rules: %w", err)
	}
	for _, r := range rules {
		if commentOf(r.UserData) == tiedComment {
			st.fixed = append(st.fixed, r)
		} else {
			st.others++
		}
	}
	return nil
}

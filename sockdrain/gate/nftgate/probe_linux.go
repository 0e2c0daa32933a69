package nftgate

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// probeTable names the table Probe makes and deletes in the same batch.
const probeTable = "sockdrain_probe"

// Probe reports whether this kernel and process can make the gate's rule:
// nf_tables, an inet table with an input base chain, and reject with tcp
// reset. It sends one batch that builds such a table in the caller's
// namespace and deletes it again; the kernel checks and commits both
// halves at once, so no packet ever meets the rule. It needs
// CAP_NET_ADMIN, and without it reports the permission error.
func Probe() error {
	if err := probe(0); err != nil {
		return fmt.Errorf("probe nftables: %w: %w", gate.ErrNotSupported, err)
	}
	return nil
}

// notSupported marks an error of nf_tables that says the kernel lacks
// something (a module, an expression) as gate.ErrNotSupported.
func notSupported(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPROTONOSUPPORT) {
		return fmt.Errorf("%w: %w", gate.ErrNotSupported, err)
	}
	return err
}

// probe runs Probe's batch in the namespace netnsFd, or the caller's for 0.
func probe(netnsFd int) error {
	conn, err := nftables.New(nftables.WithNetNSFd(netnsFd))
	if err != nil {
		return fmt.Errorf("dial nf_tables: %w", err)
	}
	t := conn.AddTable(&nftables.Table{Name: probeTable, Family: nftables.TableFamilyINet})
	c := conn.AddChain(chain(t))
	m := matchFor(netip.AddrPortFrom(netip.IPv6Unspecified(), 9), false)
	conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: m.exprs()})
	conn.DelTable(t)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("add and delete a reject rule: %w", err)
	}
	return nil
}

// socketMark caches a conclusive answer of haveSocketMark.
var socketMark struct {
	sync.Mutex
	known bool
	err   error
}

// haveSocketMark reports whether the kernel has the socket expression with
// the mark key (nft_socket, Linux 5.1), which a tied gate needs: nil, or
// why not. It builds the tied chain in a probe table and deletes it in
// the same batch, as Probe does. Only a missing expression is cached;
// any other error (a permission, a full batch) is returned and asked
// again next time.
func haveSocketMark(conn *nftables.Conn) error {
	socketMark.Lock()
	defer socketMark.Unlock()
	if socketMark.known {
		return socketMark.err
	}
	t := conn.AddTable(&nftables.Table{Name: probeTable, Family: nftables.TableFamilyINet})
	c := conn.AddChain(chain(t))
	for _, e := range tiedChainRules() {
		conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: e})
	}
	conn.DelTable(t)
	err := conn.Flush()
	if err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
		socketMark.known = true
	}
	if err != nil {
		err = fmt.Errorf("nftables socket mark expression: %w", err)
	}
	socketMark.err = err
	return err
}

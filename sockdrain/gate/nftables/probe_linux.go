package nftgate

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"

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

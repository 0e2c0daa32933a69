package ipfw

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// ipfwCmd runs ipfw with args and returns its standard output. It is exec
// on FreeBSD and a fake in tests.
type ipfwCmd func(args ...string) (string, error)

// Gate is one listener's ipfw gate.
type Gate struct {
	key  string
	addr netip.AddrPort
	run  ipfwCmd
}

var _ gate.Gate = (*Gate)(nil)

func newGate(l gate.Listener, run ipfwCmd) (*Gate, error) {
	if _, err := Targets(l.Addr.Addr()); err != nil {
		return nil, err
	}
	if l.Addr.Port() == 0 {
		return nil, fmt.Errorf("open ipfw gate for %s: no port: %w", l.Addr, gate.ErrNotEligible)
	}
	return &Gate{key: l.Key(), addr: l.Addr, run: run}, nil
}

func (g *Gate) list() ([]Rule, error) {
	out, err := g.run("-S", "list")
	if err != nil {
		return nil, fmt.Errorf("list ipfw rules: %w", err)
	}
	return ParseList(out)
}

// Arm adds the gate's rules, unless they are there.
func (g *Gate) Arm() error {
	rs, err := g.list()
	if err != nil {
		return err
	}
	if len(Ours(rs, g.key)) > 0 {
		return nil
	}
	num, err := PickNumber(rs, g.key)
	if err != nil {
		return err
	}
	cmds, err := AddArgs(num, g.key, g.addr)
	if err != nil {
		return err
	}
	for _, args := range cmds {
		if _, err := g.run(args...); err != nil {
			return errors.Join(fmt.Errorf("add ipfw rule %d: %w", num, err), g.Disarm())
		}
	}
	return nil
}

// Disarm deletes the gate's rules.
func (g *Gate) Disarm() error {
	rs, err := g.list()
	if err != nil {
		return err
	}
	for _, num := range Ours(rs, g.key) {
		if _, err := g.run("-q", "delete", strconv.Itoa(num)); err != nil {
			return fmt.Errorf("delete ipfw rule %d: %w", num, err)
		}
	}
	return nil
}

// Armed reports whether the gate's rules are loaded.
func (g *Gate) Armed() (bool, error) {
	rs, err := g.list()
	if err != nil {
		return false, err
	}
	return len(Ours(rs, g.key)) > 0, nil
}

// Close does nothing: the gate is ipfw state, and holds no handle.
func (g *Gate) Close() error { return nil }

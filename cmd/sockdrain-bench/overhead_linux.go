package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/bpffs"
	"github.com/sockdrain/sockdrain/internal/netns"
	"github.com/sockdrain/sockdrain/internal/rig/benchmark"
	"github.com/sockdrain/sockdrain/internal/rig/demoserver"
	"github.com/sockdrain/sockdrain/internal/rig/loadgen"
	"github.com/sockdrain/sockdrain/sockdrain/gate"
	"github.com/sockdrain/sockdrain/sockdrain/gate/nftgate"
)

// Shape of the overhead rounds.
const (
	overheadRounds  = 8
	overheadLoad    = time.Second
	overheadWorkers = 32
)

// openGate is a gate attached but letting every connection through, with
// its BPF program when it has one.
type openGateRun struct {
	prog  *ebpf.Program
	close func() error
}

// nftManyRules is how many gate rules the many-rules configuration adds:
// one rule's cost is too small to see, so the bench takes the slope.
const nftManyRules = 1000

// nftMany names the configuration with nftManyRules rules.
var nftMany = fmt.Sprintf("nftables, %d rules", nftManyRules)

// attachOpen attaches gate name to srv's listener in ns so that it runs
// on srv's connections without refusing any.
func attachOpen(name string, ns *netns.NS, srv *demoserver.Server) (*openGateRun, error) {
	switch name {
	case "none":
		return &openGateRun{close: func() error { return nil }}, nil
	case gate.Reuseport:
		return attachReuseportOpen(ns, srv)
	case nftMany:
		return attachManyRules(ns, srv)
	}
	return attachOtherPort(name, ns, srv)
}

// attachManyRules arms the nftables gate for nftManyRules other ports of
// srv's address (1 and up; the server's port is above 1023), and removes
// them all at once by deleting the gate's table.
func attachManyRules(ns *netns.NS, srv *demoserver.Server) (*openGateRun, error) {
	ino, err := ns.Inode()
	if err != nil {
		return nil, err
	}
	run := &openGateRun{close: func() error { return deleteNftTable(ns) }}
	for port := range uint16(nftManyRules) {
		g, err := nftgate.Open(gate.Listener{NetNS: ns.File(), NetNSInode: ino, Addr: netip.AddrPortFrom(srv.Addr().Addr(), port+1)})
		if err == nil {
			err = errors.Join(g.Arm(), g.Close())
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("arm nftables rule %d: %w", port+1, err), run.close())
		}
	}
	return run, nil
}

// deleteNftTable deletes the nftables gate's table in ns, with its rules.
func deleteNftTable(ns *netns.NS) error {
	conn, err := nftables.New(nftables.WithNetNSFd(ns.FD()))
	if err != nil {
		return err
	}
	defer conn.CloseLasting()
	conn.DelTable(&nftables.Table{Name: nftgate.TableName, Family: nftables.TableFamilyINet})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("delete table inet %s: %w", nftgate.TableName, err)
	}
	return nil
}

// attachReuseportOpen arms the reuseport gate on srv's group, then clears
// its flag through the pinned map: the program runs for every new
// connection and drops none. (The pin names are the gate's own.)
func attachReuseportOpen(ns *netns.NS, srv *demoserver.Server) (*openGateRun, error) {
	l, release, err := listenerOf(ns, srv)
	if err != nil {
		return nil, err
	}
	g, err := openGate(gate.Reuseport, l)
	if err != nil {
		release()
		return nil, err
	}
	run := &openGateRun{close: func() error { defer release(); return errors.Join(g.Disarm(), g.Close()) }}
	dir := bpffs.Path("reuseport_" + l.Key())
	err = g.Arm()
	if err == nil {
		err = clearFlag(filepath.Join(dir, "armed"))
	}
	if err == nil {
		run.prog, err = ebpf.LoadPinnedProgram(filepath.Join(dir, "prog"), nil)
	}
	if err != nil {
		return nil, errors.Join(err, run.close())
	}
	return run, nil
}

func clearFlag(pin string) error {
	m, err := ebpf.LoadPinnedMap(pin, nil)
	if err != nil {
		return fmt.Errorf("load reuseport flag: %w", err)
	}
	defer m.Close()
	return m.Put(uint32(0), uint32(0))
}

// attachOtherPort arms the gate for another port of srv's address: an
// sk_lookup program then runs on every lookup of the namespace, and an
// nftables rule on every packet of its input hook, refusing none of srv's.
func attachOtherPort(name string, ns *netns.NS, srv *demoserver.Server) (*openGateRun, error) {
	ino, err := ns.Inode()
	if err != nil {
		return nil, err
	}
	l := gate.Listener{NetNS: ns.File(), NetNSInode: ino, Addr: netip.AddrPortFrom(srv.Addr().Addr(), srv.Addr().Port()+1)}
	g, err := openGate(name, l)
	if err != nil {
		return nil, err
	}
	run := &openGateRun{close: func() error { return errors.Join(g.Disarm(), g.Close()) }}
	err = g.Arm()
	if err == nil && name == gate.SKLookup {
		run.prog, err = linkProgram(filepath.Join(bpffs.Path("sklookup_"+l.Key()), "link"))
	}
	if err != nil {
		return nil, errors.Join(err, run.close())
	}
	return run, nil
}

func linkProgram(pin string) (*ebpf.Program, error) {
	l, err := link.LoadPinnedLink(pin, nil)
	if err != nil {
		return nil, fmt.Errorf("load sk_lookup link: %w", err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return nil, err
	}
	return ebpf.NewProgramFromID(info.Program)
}

// overheadSample is one round of one configuration.
type overheadSample struct {
	rate     float64
	nsPerRun float64 // -1 without a program
	cpu      float64 // this process's CPU per connection, in seconds
	packets  float64 // loopback packets per connection
}

// overheadOnce loads srv for one period with gate attached but open.
func overheadOnce(ctx context.Context, name string, ns *netns.NS, srv *demoserver.Server) (overheadSample, error) {
	g, err := attachOpen(name, ns, srv)
	if err != nil {
		return overheadSample{}, fmt.Errorf("attach %s open: %w", name, err)
	}
	before := progStats(g.prog)
	pkts, perr := loopbackPackets(ns)
	cpu := processCPU()
	res, err := loadgen.Run(ctx, loadgen.Config{Addr: srv.Addr().String(), Workers: overheadWorkers,
		Duration: overheadLoad, AttemptTimeout: time.Second, Dial: loadgen.DialIn(ns)})
	cpu = processCPU() - cpu
	pkts2, perr2 := loopbackPackets(ns)
	after := progStats(g.prog)
	err = errors.Join(err, perr, perr2, g.close())
	if g.prog != nil {
		g.prog.Close()
	}
	if err == nil && res.Counts.Bad()+res.Counts.Refused > 0 {
		err = fmt.Errorf("the open %s gate let through only %d of %d", name, res.Counts.Complete, res.Total)
	}
	s := overheadSample{rate: res.PerSecond(), nsPerRun: -1}
	if res.Total > 0 {
		s.cpu = cpu.Seconds() / float64(res.Total)
		s.packets = float64(pkts2-pkts) / float64(res.Total)
	}
	if n := after.RunCount - before.RunCount; g.prog != nil && n > 0 {
		s.nsPerRun = float64(after.Runtime-before.Runtime) / float64(n)
	}
	return s, err
}

func progStats(p *ebpf.Program) ebpf.ProgramStats {
	if p == nil {
		return ebpf.ProgramStats{}
	}
	st, err := p.Stats()
	if err != nil {
		return ebpf.ProgramStats{}
	}
	return *st
}

var overheadConfigs = []string{"none", gate.Reuseport, gate.SKLookup, gate.NFTables, nftMany}

// runOverhead interleaves the configurations in each round, in a rotated
// order, on one server.
func runOverhead(ctx context.Context, _ config, lock kernelLock) (*benchmark.Table, error) {
	samples := make([][]overheadSample, len(overheadConfigs))
	for round := range overheadRounds {
		err := lock.hold(func() error { return overheadRound(ctx, round, samples) })
		if err != nil {
			return nil, err
		}
		progress("gate overhead: round %d/%d done", round+1, overheadRounds)
	}
	return overheadTable(samples), nil
}

func overheadRound(ctx context.Context, round int, samples [][]overheadSample) error {
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("enable BPF stats: %w", err)
	}
	defer stats.Close()
	ns, srv, end, err := demoInNewNS()
	if err != nil {
		return err
	}
	defer end()
	for k := range overheadConfigs {
		i := (k + round) % len(overheadConfigs)
		s, err := overheadOnce(ctx, overheadConfigs[i], ns, srv)
		if err != nil {
			return err
		}
		samples[i] = append(samples[i], s)
	}
	return nil
}

func overheadTable(samples [][]overheadSample) *benchmark.Table {
	t := &benchmark.Table{
		Title: "3. Gate overhead (attached, not refusing)",
		Notes: []string{fmt.Sprintf("New connections per second (HTTP/1.0, %d closed-loop clients, %s per configuration) at the demo server, "+
			"with each gate attached but letting everything through, in %d rounds that interleave all the configurations in a rotated order "+
			"on one server per round. reuseport: the program on the listener's group with its flag cleared. sklookup and nftables: armed "+
			"for another port of the same address, so the program runs on every socket lookup of the netns (the rule on every packet of "+
			"its input hook) and refuses none of these. The ratio is per round, gate ÷ none of the same round. BPF stats "+
			"(BPF_ENABLE_STATS run_time_ns / run_cnt) were on in every configuration; ns/run is the kernel's own figure per round. "+
			"CPU/conn is this process's CPU (clients, server and, on loopback, the kernel's packet path) per connection.",
			overheadWorkers, overheadLoad, overheadRounds)},
		Header: []string{"gate", "conn/s", "ratio to none", "CPU/conn", "BPF ns/run"},
	}
	for i, name := range overheadConfigs {
		var rates, ratios, cpus, nsRun []float64
		for r, s := range samples[i] {
			rates = append(rates, s.rate)
			ratios = append(ratios, s.rate/samples[0][r].rate)
			cpus = append(cpus, s.cpu)
			if s.nsPerRun >= 0 {
				nsRun = append(nsRun, s.nsPerRun)
			}
		}
		ns := "no BPF program"
		if len(nsRun) > 0 {
			ns = benchmark.Summarize(nsRun).Format(benchmark.Nanoseconds)
		}
		t.AddRow(name, benchmark.Summarize(rates).Format(benchmark.Count), benchmark.Summarize(ratios).Format(benchmark.Ratio),
			benchmark.Summarize(cpus).Format(benchmark.Seconds), ns)
	}
	t.Notes = append(t.Notes, nftRuleCost(samples))
	return t
}

// nftRuleCost estimates what one nftables gate rule costs a packet it does
// not match, from the CPU per connection with nftManyRules rules against
// none in the same round.
func nftRuleCost(samples [][]overheadSample) string {
	many := slices.Index(overheadConfigs, nftMany)
	var per, pkts []float64
	for r, s := range samples[many] {
		none := samples[0][r]
		pkts = append(pkts, none.packets)
		per = append(per, 1e9*(s.cpu-none.cpu)/(nftManyRules*none.packets)) // ns
	}
	return fmt.Sprintf("nftables rule cost: one gate rule adds too little to see, so the %q row arms the gate for %d other ports. "+
		"Per round, (CPU/conn with them − CPU/conn with none) ÷ (%d × loopback packets per connection) is what one rule costs each "+
		"packet it does not match: %s per packet per rule, with %s packets per connection. A drain adds one rule.",
		nftMany, nftManyRules, nftManyRules, benchmark.Summarize(per).Format(benchmark.Nanoseconds),
		benchmark.Summarize(pkts).Format(func(x float64) string { return fmt.Sprintf("%.1f", x) }))
}

// Package ipfw gates a listener with ipfw(8) rules on FreeBSD:
//
//	ipfw -q add NUM set 17 reset tcp from any to ADDR PORT in setup // sockdrain:KEY
//
// "setup" matches only a SYN without ACK, so handshakes under way and
// established connections pass; "reset" answers with a RST. The rules sit
// in set 17, numbered from RuleMin to RuleMax: before rc.firewall's rule
// 100, which passes everything on lo0. The comment names the listener, so
// a rule is found again by any process, and removed by Disarm.
//
// Commands are built and `ipfw -S list` parsed by plain functions, tested
// on any OS; only Probe and Open run ipfw, on FreeBSD.
package ipfw

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sockdrain/sockdrain/sockdrain/gate"
)

// The rule numbers and set sockdrain uses.
const (
	RuleMin = 20
	RuleMax = 99
	Set     = 17
)

// Comment is the comment that marks the rules of the listener with key.
func Comment(key string) string { return "sockdrain:" + key }

// Targets are the ipfw destinations that cover addr: the address itself,
// or "me" and "me6" for the wildcard addresses. An IPv6 wildcard covers
// IPv4 too, as a dual-stack listener takes both.
func Targets(addr netip.Addr) ([]string, error) {
	a := addr.Unmap()
	switch {
	case !a.IsValid() || a.Zone() != "":
		return nil, fmt.Errorf("build ipfw rule for %s: need an unscoped address: %w", addr, gate.ErrNotEligible)
	case a == netip.IPv4Unspecified():
		return []string{"me"}, nil
	case a.IsUnspecified():
		return []string{"me", "me6"}, nil
	}
	return []string{a.String()}, nil
}

// AddArgs are the arguments of the ipfw commands that arm the gate of the
// listener with key on addr, as rule number num.
func AddArgs(num int, key string, addr netip.AddrPort) ([][]string, error) {
	targets, err := Targets(addr.Addr())
	if err != nil {
		return nil, err
	}
	var cmds [][]string
	for _, to := range targets {
		cmds = append(cmds, []string{"-q", "add", strconv.Itoa(num), "set", strconv.Itoa(Set),
			"reset", "tcp", "from", "any", "to", to, strconv.Itoa(int(addr.Port())), "in", "setup",
			"//", Comment(key)})
	}
	return cmds, nil
}

// Rule is one line of `ipfw -S list`.
type Rule struct {
	Num     int
	Set     int
	Body    string
	Comment string
}

// ParseList parses the output of `ipfw -S list`, lines such as
//
//	00020 set 17 reset tcp from any to 10.0.0.1 dst-port 8080 in setup // sockdrain:0_10.0.0.1_8080
func ParseList(out string) ([]Rule, error) {
	var rs []Rule
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		r, err := parseLine(line)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func parseLine(line string) (Rule, error) {
	f := strings.Fields(line)
	if len(f) < 3 || f[1] != "set" {
		return Rule{}, fmt.Errorf("parse ipfw rule %q: want NUM set SET ... (ipfw -S list)", line)
	}
	num, err1 := strconv.Atoi(f[0])
	set, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return Rule{}, fmt.Errorf("parse ipfw rule %q: bad number or set", line)
	}
	body := strings.Join(f[3:], " ")
	body, comment, _ := strings.Cut(body, "// ")
	return Rule{Num: num, Set: set, Body: strings.TrimSpace(body), Comment: strings.TrimSpace(comment)}, nil
}

// Ours returns the numbers of the rules that carry the comment of key, in
// sockdrain's set.
func Ours(rs []Rule, key string) []int {
	var nums []int
	for _, r := range rs {
		if r.Set == Set && r.Comment == Comment(key) && (len(nums) == 0 || nums[len(nums)-1] != r.Num) {
			nums = append(nums, r.Num)
		}
	}
	return nums
}

// PickNumber chooses the rule number for key: the one its rules already
// have, else a number derived from key, else the next free one in
// RuleMin..RuleMax.
func PickNumber(rs []Rule, key string) (int, error) {
	if nums := Ours(rs, key); len(nums) > 0 {
		return nums[0], nil
	}
	used := map[int]bool{}
	for _, r := range rs {
		used[r.Num] = true
	}
	span := RuleMax - RuleMin + 1
	h := fnv.New32a()
	h.Write([]byte(key))
	start := int(h.Sum32() % uint32(span))
	for i := range span {
		if n := RuleMin + (start+i)%span; !used[n] {
			return n, nil
		}
	}
	return 0, fmt.Errorf("pick ipfw rule number: %d..%d are all taken", RuleMin, RuleMax)
}

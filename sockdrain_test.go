package sockdrain

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func TestParseListen(t *testing.T) {
	tests := []struct {
		in   string
		want Target
	}{
		{"127.0.0.1:8080", Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 8080}},
		{"[::1]:443", Target{Addr: netip.IPv6Loopback(), Port: 443}},
		{"[::ffff:10.0.0.1]:80", Target{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}},
		{"0.0.0.0:1", Target{Addr: netip.IPv4Unspecified(), Port: 1}},
		{":65535", Target{Port: 65535}},
		{"*:80", Target{Port: 80}},
	}
	for _, tt := range tests {
		got, err := ParseListen(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseListen(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "80", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1",
		"127.0.0.1:http", "localhost:80", "::1:80", "[::1]", "[fe80::1%eth0]:80", "1.2.3:80", "[127.0.0.1:80"} {
		if _, err := ParseListen(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseListen(%q) error = %v, want ErrInvalid", in, err)
		}
	}
}

func TestTargetString(t *testing.T) {
	for tg, want := range map[Target]string{
		{Port: 80}:                             "*:80",
		{Addr: netip.IPv6Loopback(), Port: 80}: "[::1]:80",
		{Addr: netip.IPv4Unspecified(), Port: 1, NetNS: "/run/netns/a"}: "0.0.0.0:1 in netns /run/netns/a",
	} {
		if got := tg.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", tg, got, want)
		}
	}
}

func FuzzParseListen(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8080", "[::1]:1", ":80", "*:1", "[::ffff:1.2.3.4]:5", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseListen(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseListen(%q) error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if tg.Port == 0 || tg.Addr.Is4In6() || tg.Addr.Zone() != "" {
			t.Fatalf("ParseListen(%q) = %+v: port 0, mapped or zoned address", s, tg)
		}
		again, err := ParseListen(tg.String())
		if err != nil || again != tg {
			t.Fatalf("round trip of %q through %q: %+v, %v", s, tg.String(), again, err)
		}
	})
}

// A Report read back from its JSON is the Report: durations included.
func TestReportJSONRoundTrip(t *testing.T) {
	rep := Report{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Elapsed: Duration(1234 * time.Millisecond),
		Event: EventPhase, Phase: TimedOut, Counts: Counts{Established: 2, Idle: 1},
		Remaining: []Conn{{Peer: "127.0.0.1:5000", State: "ESTABLISHED", Idle: true, SinceRecv: Duration(2500 * time.Millisecond)}}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rep) {
		t.Errorf("round trip of %s\n got %+v\nwant %+v", b, got, rep)
	}
}

package inetdiag

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/sockdrain/sockdrain/sockdrain/observe"
)

// message builds an inet_diag_msg as the kernel lays it out.
func message(state observe.State, local, remote netip.AddrPort, rq, wq, inode uint32, attrs ...[]byte) []byte {
	b := make([]byte, messageLen)
	b[0] = afInet
	if local.Addr().Is6() {
		b[0] = afInet6
	}
	b[1] = byte(state)
	binary.BigEndian.PutUint16(b[4:], local.Port())
	binary.BigEndian.PutUint16(b[6:], remote.Port())
	copy(b[8:24], local.Addr().AsSlice())
	copy(b[24:40], remote.Addr().AsSlice())
	binary.NativeEndian.PutUint32(b[52:], 12345) // idiag_expires
	binary.NativeEndian.PutUint32(b[56:], rq)
	binary.NativeEndian.PutUint32(b[60:], wq)
	binary.NativeEndian.PutUint32(b[64:], 1000) // idiag_uid
	binary.NativeEndian.PutUint32(b[68:], inode)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// attr builds a netlink attribute, padded to 4 bytes.
func attr(typ uint16, payload ...byte) []byte {
	b := make([]byte, 4, 4+len(payload)+3)
	binary.NativeEndian.PutUint16(b[0:], uint16(4+len(payload)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// tcpInfo is a struct tcp_info, as 6.x kernels send it, with the times
// since data was last sent and received.
func tcpInfo(sentMS, recvMS uint32) []byte {
	b := make([]byte, 232)
	binary.NativeEndian.PutUint32(b[infoLastDataSent:], sentMS)
	binary.NativeEndian.PutUint32(b[infoLastDataRecv:], recvMS)
	return b
}

func TestRequestAsksForInfo(t *testing.T) {
	for _, f := range []Family{AnyFamily, IPv4} {
		b, _ := Request{Family: f, Port: 80, Info: true}.MarshalBinary()
		ext := b[2] // struct inet_diag_req_v2's idiag_ext
		if f == AnyFamily {
			ext = b[3] // struct inet_diag_req's
		}
		if ext != 1<<(attrInfo-1) {
			t.Errorf("family %d: idiag_ext %#x, want INET_DIAG_INFO's bit", f, ext)
		}
	}
}

func TestRequestMarshal(t *testing.T) {
	b, err := Request{Family: IPv6, Port: 8080, States: StatesOf(observe.Listen, observe.Established)}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, requestLen) // struct inet_diag_req_v2
	want[0], want[1] = afInet6, ipprotoTCP
	binary.NativeEndian.PutUint32(want[4:], 1<<10|1<<1)
	want[8], want[9] = 0x1f, 0x90 // id.idiag_sport 8080, network order
	if !bytes.Equal(b, want) {
		t.Errorf("request bytes\n got % x\nwant % x", b, want)
	}
}

func TestRequestMarshalAnyFamily(t *testing.T) {
	r := Request{Port: 8080, States: StatesOf(observe.Listen, observe.Established)}
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, compatRequestLen) // struct inet_diag_req; idiag_family unset
	want[4], want[5] = 0x1f, 0x90          // id.idiag_sport 8080, network order
	binary.NativeEndian.PutUint32(want[52:], 1<<10|1<<1)
	if !bytes.Equal(b, want) {
		t.Errorf("request bytes\n got % x\nwant % x", b, want)
	}
	if r.MessageType() != tcpDiagGetSock {
		t.Errorf("message type %d, want TCPDIAG_GETSOCK (%d)", r.MessageType(), tcpDiagGetSock)
	}
}

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want observe.Socket
	}{
		{
			name: "ipv4 listener",
			in:   message(observe.Listen, netip.MustParseAddrPort("127.0.0.1:8080"), netip.AddrPort{}, 7, 4096, 99),
			want: observe.Socket{State: observe.Listen, Local: netip.MustParseAddrPort("127.0.0.1:8080"),
				Remote: netip.MustParseAddrPort("0.0.0.0:0"), RecvQ: 7, SendQ: 4096, Inode: 99},
		},
		{
			name: "ipv6 closing socket with attributes",
			in: message(observe.FinWait1, netip.MustParseAddrPort("[2001:db8::1]:443"), netip.MustParseAddrPort("[2001:db8::2]:50000"), 0, 1448, 0,
				attr(5, 0), attr(attrSKV6Only, 1), attr(4, 'c', 'u', 'b', 'i', 'c', 0)),
			want: observe.Socket{State: observe.FinWait1, Local: netip.MustParseAddrPort("[2001:db8::1]:443"),
				Remote: netip.MustParseAddrPort("[2001:db8::2]:50000"), SendQ: 1447, V6Only: true}, // the FIN is not data
		},
		{
			name: "established with tcp_info",
			in: message(observe.Established, netip.MustParseAddrPort("127.0.0.1:80"), netip.MustParseAddrPort("127.0.0.1:5000"), 0, 0, 42,
				attr(attrInfo, tcpInfo(2500, 1200)...)),
			want: observe.Socket{State: observe.Established, Local: netip.MustParseAddrPort("127.0.0.1:80"),
				Remote: netip.MustParseAddrPort("127.0.0.1:5000"), Inode: 42,
				Activity: true, SinceSent: 2500 * time.Millisecond, SinceRecv: 1200 * time.Millisecond},
		},
		{
			name: "tcp_info too short to hold the times",
			in: message(observe.Established, netip.MustParseAddrPort("127.0.0.1:80"), netip.MustParseAddrPort("127.0.0.1:5000"), 0, 0, 42,
				attr(attrInfo, tcpInfo(2500, 1200)[:infoMinLen-1]...)),
			want: observe.Socket{State: observe.Established, Local: netip.MustParseAddrPort("127.0.0.1:80"),
				Remote: netip.MustParseAddrPort("127.0.0.1:5000"), Inode: 42},
		},
		{
			name: "last ack holding only its FIN",
			in:   message(observe.LastAck, netip.MustParseAddrPort("127.0.0.1:80"), netip.MustParseAddrPort("127.0.0.1:5000"), 0, 1, 0),
			want: observe.Socket{State: observe.LastAck, Local: netip.MustParseAddrPort("127.0.0.1:80"),
				Remote: netip.MustParseAddrPort("127.0.0.1:5000")},
		},
		{
			name: "dual-stack listener",
			in:   message(observe.Listen, netip.MustParseAddrPort("[::]:80"), netip.MustParseAddrPort("[::]:0"), 0, 128, 5, attr(attrSKV6Only, 0)),
			want: observe.Socket{State: observe.Listen, Local: netip.MustParseAddrPort("[::]:80"),
				Remote: netip.MustParseAddrPort("[::]:0"), SendQ: 128, Inode: 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMessage(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseMessageRejects(t *testing.T) {
	good := message(observe.Listen, netip.MustParseAddrPort("127.0.0.1:1"), netip.AddrPort{}, 0, 0, 0)
	badFamily := bytes.Clone(good)
	badFamily[0] = 1
	badAttr := append(bytes.Clone(good), 200, 0, 11, 0, 1)
	tests := map[string][]byte{"truncated": good[:71], "unknown family": badFamily, "attribute overruns": badAttr}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseMessage(in); err == nil {
				t.Error("parsed without error")
			}
		})
	}
	if _, err := ParseMessage(good[:10]); !errors.Is(err, ErrShort) {
		t.Errorf("truncated message error = %v, want ErrShort", err)
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add(message(observe.Listen, netip.MustParseAddrPort("127.0.0.1:8080"), netip.AddrPort{}, 7, 4096, 99))
	f.Add(message(observe.Established, netip.MustParseAddrPort("[::1]:80"), netip.MustParseAddrPort("[::1]:1"), 1, 2, 3, attr(attrSKV6Only, 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseMessage(b)
		if err != nil {
			return
		}
		if len(b) < messageLen {
			t.Fatalf("parsed %d bytes, shorter than a message", len(b))
		}
		if !s.Local.IsValid() || s.Local.Addr().Is4() != (b[0] == afInet) {
			t.Fatalf("local address %v does not match family %d", s.Local, b[0])
		}
	})
}

package vmtests

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestArchiveEntriesAlignedAndTerminated(t *testing.T) {
	var buf bytes.Buffer
	a := NewArchive(&buf)
	a.Dir("dev")
	a.CharDev("dev/console", 5, 1)
	a.Bytes("init", []byte("hello"), true)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	var names []string
	for off := 0; off < len(b); {
		hdr := string(b[off : off+110])
		if !strings.HasPrefix(hdr, "070701") {
			t.Fatalf("entry at %d has magic %q", off, hdr[:6])
		}
		size, nameSize := hexField(t, hdr, 6), hexField(t, hdr, 11)
		names = append(names, string(b[off+110:off+110+nameSize-1]))
		off = align4(align4(off+110+nameSize) + size)
		if names[len(names)-1] == "init" && !bytes.Contains(b, []byte("hello")) {
			t.Error("file data missing")
		}
	}
	if got := strings.Join(names, ","); got != "dev,dev/console,init,TRAILER!!!" {
		t.Errorf("entries %s", got)
	}
	if len(b)%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", len(b))
	}
}

// hexField reads the i-th 8-digit field after the magic (0: ino).
func hexField(t *testing.T, hdr string, i int) int {
	var v int
	for _, c := range hdr[6+8*i : 14+8*i] {
		v = v*16 + strings.IndexRune("0123456789abcdef", c)
	}
	return v
}

func TestResultLineRoundTrip(t *testing.T) {
	r := Result{Kernel: "6.1.0", Package: "p", Test: "TestX", Status: StatusSkip, Seconds: 1.5, Detail: "why"}
	got, ok, err := ParseResult("noise " + r.Line() + "\r")
	if err != nil || !ok || got != r {
		t.Errorf("ParseResult(Line()) = %+v, %v, %v; want %+v", got, ok, err, r)
	}
	if _, ok, _ := ParseResult("[    2.3] kernel says hi"); ok {
		t.Error("a console line parsed as a result")
	}
}

func TestPayloadOf(t *testing.T) {
	img := make([]byte, 5*512+64)
	copy(img[0x202:], "HdrS")
	img[setupSectsOffset] = 4
	binary.LittleEndian.PutUint32(img[payloadOffsetOffset:], 16)
	binary.LittleEndian.PutUint32(img[payloadLengthOffset:], 8)
	copy(img[5*512+16:], "PAYLOAD!")
	got, err := payloadOf(img)
	if err != nil || string(got) != "PAYLOAD!" {
		t.Errorf("payloadOf = %q, %v", got, err)
	}
	binary.LittleEndian.PutUint32(img[payloadLengthOffset:], 1<<20)
	if _, err := payloadOf(img); err == nil {
		t.Error("payloadOf accepted a payload past the end")
	}
}

func TestHasXenNote(t *testing.T) {
	note := func(name string, typ uint32) []byte {
		var b bytes.Buffer
		binary.Write(&b, binary.LittleEndian, []uint32{uint32(len(name) + 1), 4, typ})
		b.WriteString(name + "\x00")
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
		b.Write([]byte{1, 2, 3, 4})
		return b.Bytes()
	}
	notes := append(note("GNU", 3), note("Xen", 18)...)
	if !hasXenNote(bytes.NewReader(notes), 18) {
		t.Error("PVH note not found")
	}
	if hasXenNote(bytes.NewReader(note("GNU", 18)), 18) {
		t.Error("a GNU note taken for a Xen one")
	}
}

func TestModName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/net/netfilter/nf_tables.ko.xz": "nf_tables",
		"nft-reject-inet.ko":                   "nft_reject_inet",
		"tcp_diag":                             "tcp_diag",
	} {
		if got := modName(in); got != want {
			t.Errorf("modName(%q) = %q, want %q", in, got, want)
		}
	}
}

package pcblist

import (
	"errors"
	"slices"
	"testing"
)

func buildXFile(pid, fd int32, typ int16, data uint64) []byte {
	b := make([]byte, xfileLen)
	le.PutUint64(b[0:], xfileLen)
	le.PutUint32(b[xfPID:], uint32(pid))
	le.PutUint32(b[12:], 80) // xf_uid
	le.PutUint32(b[xfFD:], uint32(fd))
	le.PutUint64(b[24:], data+0x10000) // xf_file
	le.PutUint16(b[xfType:], uint16(typ))
	le.PutUint64(b[xfData:], data)
	return b
}

func TestParseFilesAndOwners(t *testing.T) {
	var b []byte
	b = append(b, buildXFile(10, 3, dtypeSocket, 0xa)...)
	b = append(b, buildXFile(12, 3, dtypeSocket, 0xa)...) // inherited by a worker
	b = append(b, buildXFile(12, 4, 1, 0xb)...)           // a vnode at an address like a socket's
	b = append(b, buildXFile(11, 5, dtypeSocket, 0xc)...)
	b = append(b, buildXFile(10, 7, dtypeSocket, 0xb)...)
	fs, err := ParseFiles(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 4 || fs[0] != (File{PID: 10, FD: 3, KSocket: 0xa}) {
		t.Fatalf("ParseFiles = %+v, want 4 sockets starting with pid 10 fd 3", fs)
	}
	if got := Owners(fs, []uint64{0xa}); !slices.Equal(got, []int{10, 12}) {
		t.Errorf("Owners(0xa) = %v, want [10 12]", got)
	}
	if got := Owners(fs, []uint64{0xb, 0xc}); !slices.Equal(got, []int{10, 11}) {
		t.Errorf("Owners(0xb, 0xc) = %v, want [10 11]: the vnode must not count", got)
	}
	if got := Owners(fs, nil); got == nil || len(got) != 0 {
		t.Errorf("Owners(none) = %#v, want empty", got)
	}
}

func TestParseFilesRefusesOtherLayouts(t *testing.T) {
	b := buildXFile(10, 3, dtypeSocket, 0xa)
	le.PutUint64(b, 120)
	if _, err := ParseFiles(b); !errors.Is(err, ErrUnknownLayout) {
		t.Errorf("ParseFiles(xf_size 120) = %v, want ErrUnknownLayout", err)
	}
	if _, err := ParseFiles(buildXFile(10, 3, dtypeSocket, 0xa)[:100]); !errors.Is(err, ErrTruncated) {
		t.Errorf("ParseFiles(100 bytes) = %v, want ErrTruncated", err)
	}
}

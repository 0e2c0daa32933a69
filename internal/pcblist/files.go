package pcblist

import (
	"fmt"
	"slices"
)

// struct xfile, sys/sys/file.h (LP64, 12.0 and later):
//
//	xf_size ksize_t @0, xf_pid @8, xf_uid @12, xf_fd @16, _xf_int_pad1 @20,
//	xf_file kvaddr_t @24, xf_type short @32, _xf_short_pad1 @34,
//	xf_count @36, xf_msgcount @40, _xf_int_pad2 @44, xf_offset off_t @48,
//	xf_data kvaddr_t @56, xf_vnode @64, xf_flag @72, _xf_int_pad3 @76,
//	_xf_int64_pad[6] @80. sizeof = 128.
const (
	xfileLen = 128
	xfPID    = 8
	xfFD     = 16
	xfType   = 32
	xfData   = 56

	dtypeSocket = 2 // DTYPE_SOCKET, sys/sys/file.h
)

// File is one open socket descriptor from the kern.file sysctl.
type File struct {
	PID int
	FD  int
	// KSocket is the kernel address of the socket (xf_data), as in
	// Record.KSocket.
	KSocket uint64
}

// ParseFiles decodes the bytes of the kern.file sysctl, an array of struct
// xfile, and returns the socket descriptors in it.
func ParseFiles(b []byte) ([]File, error) {
	var fs []File
	for off := 0; off < len(b); off += xfileLen {
		n, err := recordLen(b, off)
		if err != nil {
			return nil, fmt.Errorf("parse kern.file: %w", err)
		}
		if n != xfileLen {
			return nil, fmt.Errorf("parse xfile at byte %d: length %d, known: %d: %w", off, n, xfileLen, ErrUnknownLayout)
		}
		x := b[off : off+xfileLen]
		if int16(le.Uint16(x[xfType:])) != dtypeSocket {
			continue
		}
		fs = append(fs, File{
			PID:     int(int32(le.Uint32(x[xfPID:]))),
			FD:      int(int32(le.Uint32(x[xfFD:]))),
			KSocket: le.Uint64(x[xfData:]),
		})
	}
	return fs, nil
}

// Owners returns the sorted, distinct PIDs of the processes holding any of
// the sockets in ksockets open.
func Owners(files []File, ksockets []uint64) []int {
	pids := []int{}
	for _, f := range files {
		if f.KSocket != 0 && slices.Contains(ksockets, f.KSocket) {
			pids = append(pids, f.PID)
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids)
}

package vmtests

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Archive writes an initramfs: a cpio archive in the kernel's "newc"
// format, uncompressed.
type Archive struct {
	w   io.Writer
	ino uint32
	err error
}

// NewArchive starts an archive on w.
func NewArchive(w io.Writer) *Archive { return &Archive{w: w} }

// Dir adds a directory.
func (a *Archive) Dir(name string) { a.entry(name, 0o040755, 0, nil) }

// CharDev adds a character device node.
func (a *Archive) CharDev(name string, major, minor uint32) {
	a.entry(name, 0o020600, major<<8|minor, nil)
}

// Bytes adds a regular file holding data, executable if exec.
func (a *Archive) Bytes(name string, data []byte, exec bool) {
	mode := uint32(0o100644)
	if exec {
		mode = 0o100755
	}
	a.entry(name, mode, 0, data)
}

// File adds the host file src as name, keeping its executable bit.
func (a *Archive) File(name, src string) {
	data, err := os.ReadFile(src)
	if err != nil {
		a.fail(fmt.Errorf("read %s for the initramfs: %w", src, err))
		return
	}
	st, _ := os.Stat(src)
	a.Bytes(name, data, st != nil && st.Mode()&fs.ModePerm&0o111 != 0)
}

// Close writes the trailer and returns the first error of any entry.
func (a *Archive) Close() error {
	a.entry("TRAILER!!!", 0, 0, nil)
	return a.err
}

func (a *Archive) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

// entry writes one newc header, name and data, each padded to 4 bytes.
// rdev packs the device number as major<<8|minor.
func (a *Archive) entry(name string, mode, rdev uint32, data []byte) {
	if a.err != nil {
		return
	}
	a.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		a.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev>>8, rdev&0xff, len(name)+1, 0)
	buf := append([]byte(hdr), name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	buf = append(buf, data...)
	if _, err := a.w.Write(pad4(buf)); err != nil {
		a.fail(fmt.Errorf("write initramfs entry %s: %w", name, err))
	}
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

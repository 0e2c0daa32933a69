package vmtests

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// Offsets in the x86 boot protocol's setup header (Documentation/arch/x86/boot.rst).
const (
	setupSectsOffset    = 0x1f1
	payloadOffsetOffset = 0x248
	payloadLengthOffset = 0x24c
)

// decompressors maps the magic at the start of a kernel payload to the
// command that decompresses it.
var decompressors = []struct {
	magic []byte
	cmd   string
}{
	{[]byte{0x1f, 0x8b}, "gzip"},
	{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, "xz"},
	{[]byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd"},
	{[]byte{0x02, 0x21, 0x4c, 0x18}, "lz4"},
}

// ExtractVmlinux writes the uncompressed ELF kernel held in the bzImage
// at bzImage to dst, and checks it has the PVH entry note QEMU boots by.
func ExtractVmlinux(bzImage, dst string) error {
	img, err := os.ReadFile(bzImage)
	if err != nil {
		return fmt.Errorf("read kernel image: %w", err)
	}
	payload, err := payloadOf(img)
	if err != nil {
		return fmt.Errorf("find payload of %s: %w", bzImage, err)
	}
	elfData, err := decompress(payload)
	if err != nil {
		return fmt.Errorf("decompress %s: %w", bzImage, err)
	}
	if err := checkPVH(elfData); err != nil {
		return fmt.Errorf("check %s: %w", bzImage, err)
	}
	return os.WriteFile(dst, elfData, 0o644)
}

// payloadOf returns the compressed kernel inside a bzImage.
func payloadOf(img []byte) ([]byte, error) {
	if len(img) < 0x250 || string(img[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not a bzImage")
	}
	sects := int(img[setupSectsOffset])
	if sects == 0 {
		sects = 4
	}
	start := (sects+1)*512 + int(binary.LittleEndian.Uint32(img[payloadOffsetOffset:]))
	end := start + int(binary.LittleEndian.Uint32(img[payloadLengthOffset:]))
	if end > len(img) || start >= end {
		return nil, fmt.Errorf("payload [%d, %d) outside the %d-byte image", start, end, len(img))
	}
	return img[start:end], nil
}

// decompress runs the payload through its decompressor. The kernel appends
// the uncompressed size to the payload, which some tools call trailing
// garbage, so a failing exit is accepted when the output is a whole ELF.
func decompress(payload []byte) ([]byte, error) {
	for _, d := range decompressors {
		if !bytes.HasPrefix(payload, d.magic) {
			continue
		}
		cmd := exec.Command(d.cmd, "-dc")
		cmd.Stdin = bytes.NewReader(payload)
		out, runErr := cmd.Output()
		if _, err := elf.NewFile(bytes.NewReader(out)); err != nil {
			return nil, fmt.Errorf("%s -dc: %w", d.cmd, errors.Join(runErr, err))
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown compression, magic % x", payload[:min(len(payload), 6)])
}

// checkPVH looks for the Xen PHYS32_ENTRY note (type 18), which lets QEMU
// boot an ELF kernel directly.
func checkPVH(data []byte) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("parse vmlinux: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_NOTE && hasXenNote(p.Open(), 18) {
			return nil
		}
	}
	return errors.New("vmlinux has no PVH entry note (CONFIG_PVH)")
}

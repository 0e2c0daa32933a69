package vmtests

import (
	"encoding/binary"
	"io"
)

// hasXenNote reports whether the ELF notes in r hold a "Xen" note of type typ.
func hasXenNote(r io.Reader, typ uint32) bool {
	data, err := io.ReadAll(r)
	if err != nil {
		return false
	}
	for len(data) >= 12 {
		nameSz := binary.LittleEndian.Uint32(data)
		descSz := binary.LittleEndian.Uint32(data[4:])
		t := binary.LittleEndian.Uint32(data[8:])
		name := align4(int(nameSz))
		if 12+name > len(data) {
			return false
		}
		if t == typ && string(data[12:12+nameSz]) == "Xen\x00" {
			return true
		}
		next := 12 + name + align4(int(descSz))
		if next > len(data) {
			return false
		}
		data = data[next:]
	}
	return false
}

func align4(n int) int { return (n + 3) &^ 3 }

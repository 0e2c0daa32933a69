package sklookup

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/sockdrain/sockdrain/internal/bpffs"
)

// ourProgram is the gate program's name, whole as BTF gives it, and cut
// to 15 characters as the kernel keeps it.
var ourProgram = []string{"sd_refuse_lookup", "sd_refuse_looku"}

// Program is an sk_lookup program attached to a namespace.
type Program struct {
	ID   ebpf.ProgramID
	Name string
}

// OtherPrograms lists the sk_lookup programs attached to the namespace
// netns that are not sockdrain gates. One that assigns sockets with
// bpf_sk_assign overrides a gate's drop.
func OtherPrograms(netns *os.File) ([]Program, error) {
	res, err := link.QueryPrograms(link.QueryOptions{Target: int(netns.Fd()), Attach: ebpf.AttachSkLookup})
	if err != nil {
		return nil, fmt.Errorf("query sk_lookup programs of %s: %w", netns.Name(), bpffs.NotSupported(err))
	}
	var others []Program
	for _, ap := range res.Programs {
		name, err := programName(ap.ID)
		if errors.Is(err, os.ErrNotExist) {
			continue // detached since the query
		}
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ourProgram, name) {
			others = append(others, Program{ID: ap.ID, Name: name})
		}
	}
	return others, nil
}

func programName(id ebpf.ProgramID) (string, error) {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return "", fmt.Errorf("open program %d: %w", id, err)
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return "", fmt.Errorf("get info of program %d: %w", id, err)
	}
	return info.Name, nil
}

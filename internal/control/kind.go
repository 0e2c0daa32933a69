package control

import (
	"context"
	"errors"
	"io/fs"
	"slices"

	"github.com/sockdrain/sockdrain"
)

// kinds names, on the wire, the errors a drain can end with: a client maps
// a kind back to the same error, so errors.Is works across the socket.
// The first row whose error matches names a drain's error; a kind's error
// is that of its first row. Adding an error is adding a row.
var kinds = []struct {
	kind string
	err  error
}{
	{"invalid", sockdrain.ErrInvalid},
	{"timeout", sockdrain.ErrTimeout},
	{"timeout", context.DeadlineExceeded},
	{"listener_closed", sockdrain.ErrListenerClosed},
	{"server_exited", sockdrain.ErrServerExited},
	{"busy", sockdrain.ErrBusy},
	{"stop_failed", sockdrain.ErrStop},
	{"not_supported", sockdrain.ErrNotSupported},
	{"permission", fs.ErrPermission},
}

// kindInternal is the kind of an error no row matches.
const kindInternal = "internal"

// kindOf names err's kind on the wire: "" for nil, kindInternal for an
// error of no known kind.
func kindOf(err error) string {
	if err == nil {
		return ""
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return kindInternal
}

// errorOf is the error kind stands for, nil for kindInternal or a kind
// this version does not know.
func errorOf(kind string) error {
	for _, k := range kinds {
		if k.kind == kind {
			return k.err
		}
	}
	return nil
}

// Kinds lists the kinds a drain's error can have, kindInternal aside.
func Kinds() []string {
	var ks []string
	for _, k := range kinds {
		if !slices.Contains(ks, k.kind) {
			ks = append(ks, k.kind)
		}
	}
	return ks
}

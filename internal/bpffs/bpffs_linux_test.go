package bpffs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_ADMIN) to mount bpffs and create pin dirs")
	}
}

func TestCreateListRemove(t *testing.T) {
	requireRoot(t)
	var b [6]byte
	rand.Read(b[:])
	key := "test_1_7f000001_" + hex.EncodeToString(b[:])

	dir, err := Create(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(key) })
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("pin dir mode = %v, want 0700", st.Mode().Perm())
	}
	if _, err := Create(key); !errors.Is(err, os.ErrExist) {
		t.Errorf("second Create = %v, want exist error", err)
	}
	keys, err := List()
	if err != nil || !slices.Contains(keys, key) {
		t.Fatalf("List() = %v, %v; want it to contain %s", keys, err, key)
	}
	if err := Remove(key); err != nil {
		t.Fatal(err)
	}
	if ok, err := Exists(key); ok || err != nil {
		t.Fatalf("Exists after Remove = %v, %v", ok, err)
	}
	if err := Remove(key); err != nil {
		t.Fatalf("Remove of a missing dir: %v", err)
	}
}

func TestRemoveNetNS(t *testing.T) {
	requireRoot(t)
	var b [4]byte
	rand.Read(b[:])
	ino := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3]) | 1<<40 // no real netns has it
	ours := []string{fmt.Sprintf("sklookup_%d_7f000001_80", ino), fmt.Sprintf("reuseport_%d_00000000_443", ino)}
	other := fmt.Sprintf("sklookup_%d_7f000001_80", ino+1)
	for _, k := range append(slices.Clone(ours), other) {
		if _, err := Create(k); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { Remove(k) })
	}
	removed, err := RemoveNetNS(ino)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(removed); !slices.Equal(removed, slices.Sorted(slices.Values(ours))) {
		t.Errorf("RemoveNetNS removed %q, want %q", removed, ours)
	}
	keys, err := List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(keys, other) || slices.Contains(keys, ours[0]) || slices.Contains(keys, ours[1]) {
		t.Errorf("after RemoveNetNS the keys are %q; want %q kept and %q gone", keys, other, ours)
	}
}

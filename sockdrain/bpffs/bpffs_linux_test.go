package bpffs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
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

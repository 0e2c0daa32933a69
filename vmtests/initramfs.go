package vmtests

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"
)

// Modules are the kernel modules the tests need that Debian builds as
// modules: nf_tables and its reject for the nftables gate (and counter,
// which the tests' own tables use and which is part of nf_tables since
// 5.13), nft_socket, which ties the nftables gate to its listener, the
// sock_diag families for the observer. The guest has no
// modprobe, so they are loaded up front, with their dependencies.
var Modules = []string{"nf_tables", "nft_reject_inet", "nft_counter", "nft_socket", "inet_diag", "tcp_diag", "udp_diag", "raw_diag", "mptcp_diag"}

// Guest is what one VM runs: the init binary and the test binaries,
// built on the host, keyed by the name the report gives their package.
type Guest struct {
	Init  string
	Tests map[string]string
	// Testdata is each package's testdata directory on the host, if it
	// has one; it goes beside the test binary, where tests look for it.
	Testdata map[string]string
	// Tools are host programs put in the guest's /bin under the names
	// given: static ones only, as the guest has no libraries.
	Tools   map[string]string
	Timeout time.Duration
}

// WriteInitramfs packs g and one kernel's mods into an initramfs at dst.
func WriteInitramfs(dst string, g Guest, mods []Module) (err error) {
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("create initramfs: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write initramfs: %w", cerr)
		}
	}()
	a := NewArchive(f)
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "bin", "modules", "tests"} {
		a.Dir(d)
	}
	a.CharDev("dev/console", 5, 1)
	a.File("init", g.Init)
	cfg := Config{Timeout: g.Timeout}
	for i, m := range mods {
		name := fmt.Sprintf("modules/%02d-%s.ko", i, m.Name)
		a.Bytes(name, m.Data, false)
		cfg.Modules = append(cfg.Modules, "/"+name)
	}
	for _, pkg := range slices.Sorted(maps.Keys(g.Tests)) {
		bin := g.Tests[pkg]
		dir := path.Join("tests", pkg)
		a.Dir(dir)
		a.File(path.Join(dir, pkg+".test"), bin)
		cfg.Tests = append(cfg.Tests, "/"+path.Join(dir, pkg+".test"))
		if td, ok := g.Testdata[pkg]; ok {
			if err := addTree(a, td, path.Join(dir, "testdata")); err != nil {
				return err
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(g.Tools)) {
		a.File(path.Join("bin", name), g.Tools[name])
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode guest config: %w", err)
	}
	a.Bytes(ConfigPath[1:], data, false)
	return a.Close()
}

// addTree adds the host directory src, recursively, as dst.
func addTree(a *Archive, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := path.Join(dst, filepath.ToSlash(rel))
		if d.IsDir() {
			a.Dir(name)
		} else {
			a.File(name, p)
		}
		return nil
	})
}

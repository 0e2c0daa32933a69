package vmtests

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Module is one kernel module, uncompressed, ready for finit_module.
type Module struct {
	Name string
	Data []byte
}

// moduleTree is an extracted /lib/modules/RELEASE directory.
type moduleTree struct {
	files   map[string]string // module name -> path
	builtin map[string]bool
	loaded  map[string]bool
	order   []Module
}

// ResolveModules returns the modules called names and everything they
// depend on, read from the modules tree at dir, dependencies first, and
// the names this kernel has neither as a module nor built in (older
// kernels lack some). Built-in modules are left out. It reads each
// module's depends= field, so it needs no modules.dep.
func ResolveModules(dir string, names []string) (mods []Module, absent []string, err error) {
	t := &moduleTree{files: map[string]string{}, builtin: map[string]bool{}, loaded: map[string]bool{}}
	if err := t.scan(dir); err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		if _, ok := t.files[modName(n)]; !ok && !t.builtin[modName(n)] {
			absent = append(absent, n)
			continue
		}
		if err := t.add(modName(n)); err != nil {
			return nil, nil, err
		}
	}
	return t.order, absent, nil
}

// modName is a module's canonical name: the file name without .ko and
// any compression suffix, with dashes as underscores.
func modName(s string) string {
	s, _, _ = strings.Cut(filepath.Base(s), ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

func (t *moduleTree) scan(dir string) error {
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".ko") {
			t.files[modName(d.Name())] = p
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("scan modules in %s: %w", dir, err)
	}
	list, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return fmt.Errorf("read builtin modules: %w", err)
	}
	for _, l := range strings.Fields(string(list)) {
		t.builtin[modName(l)] = true
	}
	return nil
}

// add appends name after its dependencies, once.
func (t *moduleTree) add(name string) error {
	if t.loaded[name] || t.builtin[name] {
		return nil
	}
	path, ok := t.files[name]
	if !ok {
		return fmt.Errorf("resolve module %s: not in this kernel's modules", name)
	}
	data, err := readModule(path)
	if err != nil {
		return err
	}
	deps, err := dependsOf(data)
	if err != nil {
		return fmt.Errorf("read module %s: %w", name, err)
	}
	t.loaded[name] = true
	for _, d := range deps {
		if err := t.add(modName(d)); err != nil {
			return err
		}
	}
	t.order = append(t.order, Module{Name: name, Data: data})
	return nil
}

// readModule reads a module file, decompressing .xz, .zst and .gz.
func readModule(path string) ([]byte, error) {
	tool := map[string]string{".xz": "xz", ".zst": "zstd", ".gz": "gzip"}[filepath.Ext(path)]
	if tool == "" {
		return os.ReadFile(path)
	}
	out, err := exec.Command(tool, "-dc", path).Output()
	if err != nil {
		return nil, fmt.Errorf("decompress module %s: %w", path, err)
	}
	return out, nil
}

// dependsOf reads the depends= field of a module's .modinfo section.
func dependsOf(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	info, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, field := range bytes.Split(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(field, []byte("depends=")); ok && len(v) > 0 {
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}

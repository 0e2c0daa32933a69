package vmtests

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Kernel is one kernel of the matrix: Debian's cloud-amd64 kernel from
// one suite. The cloud flavour has fewer drivers and boots faster.
type Kernel struct {
	Name  string // what the report calls it
	Suite string // the Debian suite that carries it
}

// Matrix is the kernels make vmtest boots.
var Matrix = []Kernel{
	{Name: "6.1", Suite: "bookworm"},
	{Name: "6.12", Suite: "bookworm-backports"},
}

// Older are kernels that can be asked for by name (-kernels 5.10): below
// some gates' minimums, they show those gates' tests skip.
var Older = []Kernel{
	{Name: "5.10", Suite: "bullseye"},
}

// metaPackage is the package that depends on a suite's current kernel.
const metaPackage = "linux-image-cloud-amd64"

// sources are the Debian suites a kernel may come from.
const sources = `deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-backports main
deb http://deb.debian.org/debian bullseye main
`

// Booted is a kernel unpacked in the cache, ready to boot.
type Booted struct {
	Kernel
	Release string // uname -r
	Vmlinux string // the uncompressed ELF kernel
	Modules string // its /lib/modules/RELEASE directory
}

// Fetch returns k from the cache dir, downloading and unpacking it first
// if needed. Once cached, a kernel needs no network.
func Fetch(cache string, k Kernel) (Booted, error) {
	dir := filepath.Join(cache, "kernel-"+k.Name)
	if b, err := cached(dir, k); err == nil {
		return b, nil
	}
	if err := download(cache, dir, k); err != nil {
		return Booted{}, fmt.Errorf("fetch kernel %s from %s: %w", k.Name, k.Suite, err)
	}
	return cached(dir, k)
}

// cached reads an unpacked kernel from dir.
func cached(dir string, k Kernel) (Booted, error) {
	rel, err := os.ReadFile(filepath.Join(dir, "release"))
	if err != nil {
		return Booted{}, err
	}
	b := Booted{Kernel: k, Release: strings.TrimSpace(string(rel)), Vmlinux: filepath.Join(dir, "vmlinux")}
	b.Modules = filepath.Join(dir, "lib", "modules", b.Release)
	_, err = os.Stat(b.Vmlinux)
	return b, err
}

// download unpacks k's package into dir, with an apt state of its own in
// cache: the host's apt configuration and package set stay untouched.
func download(cache, dir string, k Kernel) error {
	apt, err := aptOptions(filepath.Join(cache, "apt"))
	if err != nil {
		return err
	}
	if err := run("", "apt-get", append(apt, "-qq", "update")...); err != nil {
		return err
	}
	pkg, err := kernelPackage(apt, k.Suite)
	if err != nil {
		return err
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := run(tmp, "apt-get", append(apt, "-qq", "download", pkg)...); err != nil {
		return err
	}
	if err := unpack(tmp, pkg); err != nil {
		return err
	}
	os.RemoveAll(dir)
	return os.Rename(tmp, dir)
}

// aptOptions points apt at sources, lists and caches under dir.
func aptOptions(dir string) ([]string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial", "parts"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	list := filepath.Join(dir, "sources.list")
	if err := os.WriteFile(list, []byte(sources), 0o644); err != nil {
		return nil, err
	}
	return []string{
		"-o", "Dir::Etc::SourceList=" + list,
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(dir, "parts"),
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "APT::Sandbox::User=root",
	}, nil
}

// kernelPackage names the kernel image package metaPackage depends on in suite.
func kernelPackage(apt []string, suite string) (string, error) {
	out, err := exec.Command("apt-cache", append(apt, "show", metaPackage+"/"+suite)...).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache show %s/%s: %w", metaPackage, suite, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if deps, ok := strings.CutPrefix(sc.Text(), "Depends: "); ok {
			return strings.Fields(deps)[0], nil
		}
	}
	return "", fmt.Errorf("no Depends in apt-cache show %s/%s", metaPackage, suite)
}

// unpack extracts the .deb of pkg in dir, then its vmlinux and release.
func unpack(dir, pkg string) error {
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("find the downloaded %s in %s: %d matches", pkg, dir, len(debs))
	}
	if err := run("", "dpkg-deb", "-x", debs[0], dir); err != nil {
		return err
	}
	os.Remove(debs[0])
	release := strings.TrimPrefix(pkg, "linux-image-")
	err := ExtractVmlinux(filepath.Join(dir, "boot", "vmlinuz-"+release), filepath.Join(dir, "vmlinux"))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "release"), []byte(release+"\n"), 0o644)
}

// run runs a command in dir, its output on stderr.
func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("run %s %s: %w", name, strings.Join(args[max(0, len(args)-2):], " "), err)
	}
	return nil
}

package vmtests

import (
	"fmt"
	"os"
	"path/filepath"
)

// FetchBusybox returns the path of Debian's static busybox (the package
// busybox-static), unpacked in cache like the kernels: the host's own
// busybox, if any, is dynamic, and nothing is installed on the host. The
// guest gets it as the few commands tests run: sh, sleep and touch.
func FetchBusybox(cache string) (string, error) {
	dir := filepath.Join(cache, "busybox")
	bin := filepath.Join(dir, "bin", "busybox")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	apt, err := aptOptions(filepath.Join(cache, "apt"))
	if err != nil {
		return "", err
	}
	if err := run("", "apt-get", append(apt, "-qq", "update")...); err != nil {
		return "", err
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	if err := run(tmp, "apt-get", append(apt, "-qq", "download", "busybox-static")...); err != nil {
		return "", fmt.Errorf("fetch busybox-static: %w", err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "busybox-static_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("find the downloaded busybox-static in %s: %d matches", tmp, len(debs))
	}
	if err := run("", "dpkg-deb", "-x", debs[0], tmp); err != nil {
		return "", err
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return bin, nil
}

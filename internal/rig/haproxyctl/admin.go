package haproxyctl

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// Command sends one command to the admin socket in dir and returns the
// answer.
func Command(dir, cmd string) (string, error) {
	c, err := net.DialTimeout("unix", filepath.Join(dir, "admin.sock"), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", cmd); err != nil {
		return "", err
	}
	var b strings.Builder
	_, err = bufio.NewReader(c).WriteTo(&b)
	return b.String(), err
}

// ShowStat returns `show stat` for server proxy/server, field by field
// (status, scur, stot, wretr, wredis, ...).
func ShowStat(dir, proxy, server string) (map[string]string, error) {
	out, err := Command(dir, "show stat")
	if err != nil {
		return nil, fmt.Errorf("haproxy show stat: %w", err)
	}
	return parseShowStat(out, proxy, server)
}

// parseShowStat finds the line of proxy/server in `show stat`'s CSV.
func parseShowStat(out, proxy, server string) (map[string]string, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "# ") {
		return nil, fmt.Errorf("haproxy show stat: %q", out)
	}
	head := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) < 2 || f[0] != proxy || f[1] != server {
			continue
		}
		m := make(map[string]string, len(head))
		for i, k := range head {
			if i < len(f) {
				m[k] = f[i]
			}
		}
		return m, nil
	}
	return nil, fmt.Errorf("haproxy show stat has no server %s/%s", proxy, server)
}

// Package nginxconf is what the benches and the keep-alive tests share of
// nginx, a real server a drain stops or takes out of rotation: the
// directory each nginx runs from, with its config and the pages it
// serves, and the arguments that point nginx at it.
package nginxconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Config is one nginx: a master and its workers serving static pages on
// one address, with nginx's default keep-alive (keepalive_timeout 65s).
type Config struct {
	Listen      string // HOST:PORT
	Workers     int    // worker processes
	Connections int    // connections per worker, at most
	// User runs the workers as this user instead of nginx's default, for
	// a directory under one only root may enter, such as t.TempDir().
	User string
}

// Write makes dir an nginx prefix for c: nginx.conf, and pages (by path,
// as served, without the leading slash) in dir/www, readable by the
// workers. The pid file and the error log go to dir as well.
func Write(dir string, c Config, pages map[string][]byte) error {
	www := filepath.Join(dir, "www")
	err := errors.Join(os.Chmod(dir, 0o755), os.Mkdir(www, 0o755),
		os.WriteFile(filepath.Join(dir, "nginx.conf"), c.conf(dir), 0o644))
	for path, page := range pages {
		err = errors.Join(err, os.WriteFile(filepath.Join(www, path), page, 0o644))
	}
	if err != nil {
		return fmt.Errorf("write nginx config: %w", err)
	}
	return nil
}

func (c Config) conf(dir string) []byte {
	user := ""
	if c.User != "" {
		user = fmt.Sprintf("user %s;\n", c.User)
	}
	return fmt.Appendf(nil, conf, user, dir, c.Workers, c.Connections, c.Listen)
}

const conf = `%[1]sdaemon off;
master_process on;
worker_processes %[3]d;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log;
events { worker_connections %[4]d; }
http {
	access_log off;
	default_type application/octet-stream;
	server {
		listen %[5]s;
		root %[2]s/www;
	}
}
`

// Args are nginx's arguments to run from dir, written by Write. Followed
// by "-s", "quit", they make the nginx running from dir quit gracefully.
func Args(dir string) []string {
	return []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf")}
}

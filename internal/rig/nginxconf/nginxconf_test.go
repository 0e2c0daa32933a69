package nginxconf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWrite writes a prefix and, where nginx is installed, has nginx test
// its config.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	c := Config{Listen: "127.0.0.1:8080", Workers: 2, Connections: 1024, User: "root"}
	if err := Write(dir, c, map[string][]byte{"page": []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "www", "page")); err != nil || string(b) != "hello" {
		t.Errorf("www/page = %q, %v", b, err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"user root;\n", "worker_processes 2;", "worker_connections 1024;", "listen 127.0.0.1:8080;", "root " + dir + "/www;"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("nginx.conf lacks %q:\n%s", want, conf)
		}
	}
	nginx, err := exec.LookPath("nginx")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("nginx -t wants nginx, and root for the user directive")
	}
	if out, err := exec.Command(nginx, append(Args(dir), "-t")...).CombinedOutput(); err != nil {
		t.Errorf("nginx -t: %v\n%s", err, out)
	}
}

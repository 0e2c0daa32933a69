// Package haproxyctl is what the load-balancer bench and the keep-alive
// tests share of HAProxy, in front of the servers a drain takes out of
// rotation: its configuration, and its admin socket.
package haproxyctl

import "fmt"

// Balance balances one frontend, bound to bind, over servers (its
// "server" lines), with fast checks of checkPath, L7 retries and
// redispatch, pooled keep-alive connections to the servers (http-reuse
// always), and an admin socket in dir, which also holds the pid file.
func Balance(dir, bind, checkPath, servers string) string {
	return fmt.Sprintf(conf, dir, bind, checkPath, servers)
}

const conf = `global
	nbthread 2
	maxconn 2000
	pidfile %[1]s/haproxy.pid
	stats socket %[1]s/admin.sock level admin
defaults
	mode http
	timeout connect 1s
	timeout client 30s
	timeout server 5s
	timeout http-request 5s
	timeout http-keep-alive 30s
	timeout check 1s
	retries 3
	option redispatch 1
	retry-on conn-failure empty-response response-timeout
	http-reuse always
frontend fe
	bind %[2]s
	default_backend be
backend be
	balance roundrobin
	option httpchk GET %[3]s
	default-server check inter 200ms fall 1 rise 2
%[4]s`

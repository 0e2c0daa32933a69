//go:build !linux

package control

// DefaultDir is where `sockdrain run` makes its control sockets. FreeBSD
// and the other BSDs have no /run; their run-time files live in /var/run.
const DefaultDir = "/var/run/sockdrain"

//go:build !linux && !freebsd

package backend

// All is empty: no gate serves here.
var All []Backend

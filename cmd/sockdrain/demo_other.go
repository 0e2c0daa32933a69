//go:build !linux

package main

import "github.com/urfave/cli/v2"

func demoCommand(env) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "(Linux only) stop a loaded server without and with sockdrain, and count what clients saw",
		Action: func(*cli.Context) error {
			return unsupported("the demo needs Linux network namespaces")
		},
	}
}

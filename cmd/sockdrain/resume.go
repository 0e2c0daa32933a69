package main

import (
	"encoding/json"
	"fmt"

	"github.com/sockdrain/sockdrain"
	"github.com/urfave/cli/v2"
)

func resumeCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "resume",
		Usage:     "open the gate a drain left armed, so the listener accepts again (idempotent)",
		UsageText: "sockdrain resume --listen HOST:PORT | --port PORT [--netns PATH] [--json]",
		Flags:     append(targetFlags(), &cli.BoolFlag{Name: "json", Usage: "print a JSON object"}),
		Action: func(c *cli.Context) error {
			t, err := parseTarget(c)
			if err != nil {
				return err
			}
			opened, err := sockdrain.Resume(c.Context, t)
			switch {
			case c.Bool("json"):
				b, _ := json.Marshal(struct {
					Opened []string `json:"opened"`
				}{append([]string{}, opened...)})
				fmt.Fprintf(e.stdout, "%s\n", b)
			case len(opened) == 0:
				fmt.Fprintf(e.stdout, "no gate was armed on %s\n", t)
			default:
				for _, g := range opened {
					fmt.Fprintf(e.stdout, "opened %s\n", g)
				}
			}
			return err
		},
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/sockdrain/sockdrain"
	"github.com/urfave/cli/v2"
)

func probeCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "probe",
		Usage:     "say which gates (and --close-idle) this kernel supports, and why any is missing",
		UsageText: "sockdrain probe [--json]",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON object per gate"}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return badInput("unexpected argument %q", c.Args().First())
			}
			st := append(sockdrain.Probe(), sockdrain.ProbeFeatures()...)
			if c.Bool("json") {
				for _, s := range st {
					b, _ := json.Marshal(s)
					fmt.Fprintf(e.stdout, "%s\n", b)
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "GATE/FEATURE\tAVAILABLE\tNOTES")
			for _, s := range st {
				avail := "yes"
				if !s.Available {
					avail = "no: " + s.Reason
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, avail, s.Note)
			}
			return tw.Flush()
		},
	}
}

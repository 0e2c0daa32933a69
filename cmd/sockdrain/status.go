package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sockdrain/sockdrain"
	"github.com/urfave/cli/v2"
)

func statusCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the queues and connections of a listening socket",
		UsageText: "sockdrain status --listen HOST:PORT | --port PORT [--netns PATH] [--json] [--watch]",
		Flags: append(targetFlags(),
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per listener"},
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "refresh until interrupted (exits 0)"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "refresh `INTERVAL` for --watch"},
		),
		Action: func(c *cli.Context) error {
			t, err := parseTarget(c)
			if err != nil {
				return err
			}
			interval := c.Duration("interval")
			if interval <= 0 {
				return badInput("--interval must be positive")
			}
			o, err := sockdrain.NewObserver(t)
			if err != nil {
				return err
			}
			defer o.Close()
			print := printTable
			if c.Bool("json") {
				print = printJSON
			}
			for {
				ls, err := o.Status()
				if err != nil {
					return err
				}
				if err := sockdrain.ArmedGates(t, ls); err != nil {
					return err
				}
				if c.Bool("watch") && e.tty && !c.Bool("json") {
					fmt.Fprint(e.stdout, "\033[H\033[2J")
				}
				if err := print(e.stdout, ls); err != nil {
					return err
				}
				if !c.Bool("watch") {
					return nil
				}
				select {
				case <-c.Context.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
}

func printJSON(w io.Writer, ls []sockdrain.Listener) error {
	for _, l := range ls {
		b, err := json.MarshalIndent(l, "", "  ")
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
			return err
		}
	}
	return nil
}

func printTable(w io.Writer, ls []sockdrain.Listener) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LISTEN\tPIDS\tACCEPTQ\tBACKLOG\tSYN_RECV\tESTAB\tIDLE\tCLOSE_WAIT\tCLOSING\tUNACKED\tGATE")
	for _, l := range ls {
		gates := strings.Join(l.Gates, ",")
		if gates == "" {
			gates = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", l.Listen, pidList(l.PIDs),
			l.AcceptQueue, l.Backlog, l.SynRecv, l.Established, l.Idle, l.CloseWait, l.Closing, l.UnackedBytes, gates)
	}
	return tw.Flush()
}

func pidList(pids []int) string {
	if len(pids) == 0 {
		return "-"
	}
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

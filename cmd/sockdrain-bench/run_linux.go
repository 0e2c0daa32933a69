package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sockdrain/sockdrain/internal/rig/benchmark"
)

// section is one table of the report.
type section struct {
	id  string
	run func(ctx context.Context, cfg config, lock kernelLock) (*benchmark.Table, error)
}

var sections = []section{
	{"1", func(ctx context.Context, cfg config, lock kernelLock) (*benchmark.Table, error) {
		return runLoss(ctx, lock, cfg.stops)
	}},
	{"2", runRefuse},
	{"3", runOverhead},
	{"4", runObserver},
	{"5", runDrained},
	{"6", runBusy},
	{"7", runLB},
}

// run runs the chosen tables and writes the report.
func run(cfg config) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: the bench creates network namespaces and loads BPF programs")
	}
	if _, err := raiseFileLimit(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.hold > 0 {
		return kernelLock{ctx, cfg.lock}.hold(func() error { return holdBusy(ctx, cfg.hold, cfg.holdFor) })
	}
	start := time.Now()
	var tables []*benchmark.Table
	var failed []error
	for _, s := range sections {
		if !strings.Contains(cfg.sections, s.id) {
			continue
		}
		progress("table %s: start", s.id)
		// One hold per table (each takes a few minutes): finer holds
		// starve behind other users of the lock.
		var t *benchmark.Table
		err := kernelLock{ctx, cfg.lock}.hold(func() (err error) {
			t, err = s.run(ctx, cfg, kernelLock{ctx, ""})
			return err
		})
		if err != nil {
			// Keep the other tables; the report says what failed.
			err = fmt.Errorf("table %s: %w", s.id, err)
			progress("%v", err)
			failed = append(failed, err)
			t = &benchmark.Table{Title: "Table " + s.id + " failed", Notes: []string{"`" + err.Error() + "`"}}
		}
		tables = append(tables, t)
	}
	return errors.Join(append(failed, writeReport(cfg, start, time.Since(start), tables))...)
}

func writeReport(cfg config, start time.Time, took time.Duration, tables []*benchmark.Table) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# sockdrain benchmarks\n\n")
	fmt.Fprintf(&b, "Written by `%s` (via `make bench`), started %s, took %s. "+
		"Every figure is a median with its spread and N from this one run; comparisons are ratios of rounds interleaved in it. "+
		"Everything ran over loopback in network namespaces the bench created.\n\n",
		strings.Join(os.Args, " "), start.UTC().Format(time.RFC3339), took.Round(time.Second))
	m := benchmark.ThisMachine()
	if cfg.revision != "" {
		m.Revision = cfg.revision
	}
	b.WriteString(m.Markdown())
	fmt.Fprintf(&b, "- nginx: %s\n- HAProxy: %s\n- iproute2: %s\n\n",
		toolVersion("nginx", "-v"), toolVersion("haproxy", "-v"), toolVersion("ss", "-V"))
	for _, t := range tables {
		if err := t.WriteMarkdown(&b); err != nil {
			return err
		}
	}
	if err := os.WriteFile(cfg.out, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	progress("wrote %s", cfg.out)
	return nil
}

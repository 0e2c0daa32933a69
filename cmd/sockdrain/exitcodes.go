package main

import (
	"context"
	"errors"
	"io/fs"
	"strconv"
	"strings"

	"github.com/sockdrain/sockdrain"
	"github.com/sockdrain/sockdrain/internal/supervisor"
)

// Exit codes, the same for every command.
const (
	exitOK          = 0
	exitInternal    = 1
	exitInvalid     = 2
	exitTimeout     = 3
	exitUnsupported = 4
	exitListener    = 5
	exitServer      = 6
	exitBusy        = 7
	exitStop        = 8
	// A signal's exit code is 128 plus its number.
	exitSIGINT  = 130
	exitSIGTERM = 143
)

// exitCodeRow is one row of the exit-code table.
type exitCodeRow struct {
	codes   []int
	meaning string
}

// exitCodes is the one table of exit codes: --help prints it, and a test
// checks that the README's table says the same.
var exitCodes = []exitCodeRow{
	{[]int{exitOK}, "success"},
	{[]int{exitInternal}, "internal failure"},
	{[]int{exitInvalid}, `bad input, including "no listening TCP socket on that address"; nothing on the system was changed`},
	{[]int{exitTimeout}, "timed out"},
	{[]int{exitUnsupported}, "not permitted, or not supported on this kernel or OS"},
	{[]int{exitListener}, "the listener closed during the drain while its server kept running"},
	{[]int{exitServer}, "the server exited during the drain (a crash, or a kill)"},
	{[]int{exitBusy}, "another drain holds the port: it is still running, or it left a gate of another backend armed (run `resume` first)"},
	{[]int{exitStop}, "the server's stop (`--stop`, `--stop-signal`) failed or could not start; the gate was rolled back"},
	{[]int{exitSIGINT, exitSIGTERM}, "interrupted by SIGINT or SIGTERM; the gate was rolled back"},
}

// codesText says a row's codes as the README and --help write them: "130, 143".
func (r exitCodeRow) codesText() string {
	s := make([]string, len(r.codes))
	for i, c := range r.codes {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ", ")
}

// exitCodesHelp renders exitCodes for --help, wrapped at 80 columns.
func exitCodesHelp() string {
	var b strings.Builder
	b.WriteString("EXIT CODES:\n")
	for _, r := range exitCodes {
		lead := "   " + r.codesText() + "  "
		line := lead
		for _, w := range strings.Fields(strings.ReplaceAll(r.meaning, "`", "")) {
			if len(line)+1+len(w) > 80 && len(line) > len(lead) {
				b.WriteString(line + "\n")
				line = strings.Repeat(" ", 6)
			}
			if len(line) > 0 && line[len(line)-1] != ' ' {
				line += " "
			}
			line += w
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// carriedExitCode is the exit code err carries, if it chooses its own: a
// server's status passed on by `sockdrain run`. A remote drain's error
// matches the library's errors, and takes their codes.
func carriedExitCode(err error) (int, bool) {
	if e, ok := errors.AsType[supervisor.ChildError](err); ok {
		return e.Code, true
	}
	return 0, false
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	if code, ok := carriedExitCode(err); ok {
		return code
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, sockdrain.ErrInvalid):
		return exitInvalid
	case errors.Is(err, sockdrain.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return exitTimeout
	case errors.Is(err, sockdrain.ErrListenerClosed):
		return exitListener
	case errors.Is(err, sockdrain.ErrServerExited):
		return exitServer
	case errors.Is(err, sockdrain.ErrBusy):
		return exitBusy
	case errors.Is(err, sockdrain.ErrStop):
		return exitStop
	case errors.Is(err, sockdrain.ErrNotSupported), errors.Is(err, fs.ErrPermission):
		return exitUnsupported
	}
	if sig, ok := errors.AsType[signalError](err); ok {
		return 128 + int(sig.sig)
	}
	return exitInternal
}

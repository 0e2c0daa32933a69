package vmtests

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// ConfigPath is where the initramfs holds the guest's Config.
const ConfigPath = "/vmtest.json"

// ResultPrefix starts every line the guest writes for the host to read.
const ResultPrefix = "VMTEST "

// Config tells the guest init what to load and run.
type Config struct {
	// Modules are paths of kernel modules, in the order to load them.
	Modules []string
	// Tests are paths of test binaries, each run in its own directory.
	Tests []string
	// Timeout bounds each test binary.
	Timeout time.Duration
}

// Result is one line of the guest's report: a test's outcome, or with an
// empty Test the outcome of a whole test binary or of the boot.
type Result struct {
	Kernel  string  `json:"kernel"`
	Package string  `json:"package"`
	Test    string  `json:"test,omitempty"`
	Status  string  `json:"status"` // PASS, FAIL or SKIP; DONE ends the run
	Seconds float64 `json:"seconds"`
	Detail  string  `json:"detail,omitempty"`
}

// Statuses of a Result.
const (
	StatusPass = "PASS"
	StatusFail = "FAIL"
	StatusSkip = "SKIP"
	StatusDone = "DONE"
)

// Line formats r as one line for the serial console.
func (r Result) Line() string {
	b, _ := json.Marshal(r)
	return ResultPrefix + string(b)
}

// ParseResult reads a line written by Line. ok is false for any other
// line of console output.
func ParseResult(line string) (r Result, ok bool, err error) {
	i := strings.Index(line, ResultPrefix)
	if i < 0 {
		return r, false, nil
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(line[i+len(ResultPrefix):])), &r); err != nil {
		return r, true, fmt.Errorf("parse result line %q: %w", line, err)
	}
	return r, true, nil
}

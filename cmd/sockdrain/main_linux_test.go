package main

import (
	"os"
	"testing"

	"github.com/sockdrain/sockdrain/internal/listenfd"
	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// runAsCLI, set in the environment, makes the test binary run the CLI's
// main instead of the tests: the kill tests need the CLI as a process of
// its own, built from the same code.
const runAsCLI = "SOCKDRAIN_TEST_RUN_AS_CLI"

// TestMain runs, in this order: `sockdrain run`'s shim when run started
// it; the test server on LISTEN_FDS when the first argument is childArg;
// a default Go net/http server when it is goServerArg; the CLI when asked
// to; and otherwise the tests, failing the run if they leave file
// descriptors open.
func TestMain(m *testing.M) {
	listenfd.RunShim()
	if len(os.Args) > 2 && os.Args[1] == childArg {
		os.Exit(childServer(os.Args[2]))
	}
	if len(os.Args) > 2 && os.Args[1] == goServerArg {
		os.Exit(goServer(os.Args[2]))
	}
	if os.Getenv(runAsCLI) == "1" {
		main()
		return
	}
	os.Exit(nstest.CheckLeaks(m))
}

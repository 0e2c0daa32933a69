package stoploss

import (
	"os"
	"testing"

	"github.com/sockdrain/sockdrain/sockdrain/nstest"
)

// TestMain fails the run if the tests leave file descriptors open.
func TestMain(m *testing.M) { os.Exit(nstest.CheckLeaks(m)) }

package bpffs_test

import (
	"os"
	"testing"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// TestMain fails the run if the tests leave file descriptors open.
func TestMain(m *testing.M) { os.Exit(nstest.CheckLeaks(m)) }

package netns_test

import (
	"os"
	"testing"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

func TestMain(m *testing.M) { os.Exit(nstest.CheckLeaks(m)) }

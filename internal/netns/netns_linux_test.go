package netns_test

import (
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sockdrain/sockdrain/internal/testutil/nstest"
)

// Do must run fn inside the namespace however many goroutines enter it at
// once, whichever OS threads they hold, the main thread included.
func TestDoFromManyGoroutines(t *testing.T) {
	other := nstest.New(t)
	want, err := other.Inode()
	if err != nil {
		t.Fatal(err)
	}
	inside := func() error {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			return err
		}
		if st.Ino != want {
			return fmt.Errorf("fn ran in namespace %d, want %d", st.Ino, want)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for range 500 {
				if err := other.Do(inside); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

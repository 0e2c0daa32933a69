package sockfd

import "os"

// Control calls fn with f's descriptor without touching its blocking mode,
// which a duplicate shares with the descriptor it was taken from.
func Control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var fnErr error
	if err := rc.Control(func(fd uintptr) { fnErr = fn(int(fd)) }); err != nil {
		return err
	}
	return fnErr
}

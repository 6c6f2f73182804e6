//go:build unix

package endpoint

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// checkPrivate refuses a directory another user owns or may write to:
// someone else could put a socket there and receive the user's commands.
func checkPrivate(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s is not a directory of this user; remove it and try again", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is open to other users (mode %v); run chmod 700 on it", dir, fi.Mode().Perm())
	}
	return nil
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

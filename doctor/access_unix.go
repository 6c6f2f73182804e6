//go:build unix

package doctor

import "golang.org/x/sys/unix"

func access(path string) error { return unix.Access(path, unix.R_OK|unix.W_OK) }

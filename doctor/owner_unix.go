//go:build unix

package doctor

import (
	"io/fs"
	"syscall"
)

func ownerOf(fi fs.FileInfo) (Owner, bool) {
	switch s := fi.Sys().(type) {
	case Owner:
		return s, true
	case *syscall.Stat_t:
		return Owner{UID: int(s.Uid), GID: int(s.Gid)}, true
	}
	return Owner{}, false
}

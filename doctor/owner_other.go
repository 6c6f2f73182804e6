//go:build !unix

package doctor

import "io/fs"

func ownerOf(fi fs.FileInfo) (Owner, bool) {
	o, ok := fi.Sys().(Owner)
	return o, ok
}

// Command archive writes the release archives and their checksums the same
// way on every machine (GNU tar's and zip's options differ between Linux and
// macOS): entries sorted by name, every time set to the commit's date,
// owner and group 0, modes normalised (0755 for directories and
// executables, 0644 for the rest).
//
//	archive tar.gz|zip OUT SRCDIR PREFIX EPOCH   SRCDIR's files under PREFIX/
//	archive sums OUT FILE...                     SHA-256 lines as sha256sum prints them
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "archive:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) >= 2 && args[0] == "sums" {
		return sums(args[1], args[2:])
	}
	if len(args) != 5 {
		return fmt.Errorf("usage: archive tar.gz|zip OUT SRCDIR PREFIX EPOCH | archive sums OUT FILE...")
	}
	epoch, err := strconv.ParseInt(args[4], 10, 64)
	if err != nil {
		return fmt.Errorf("EPOCH %q: %w", args[4], err)
	}
	files, err := collect(args[2])
	if err != nil {
		return err
	}
	out, err := os.Create(args[1])
	if err != nil {
		return err
	}
	defer out.Close()
	mtime := time.Unix(epoch, 0).UTC()
	switch args[0] {
	case "tar.gz":
		err = writeTar(out, args[2], args[3], files, mtime)
	case "zip":
		err = writeZip(out, args[2], args[3], files, mtime)
	default:
		err = fmt.Errorf("unknown format %q", args[0])
	}
	if err != nil {
		return err
	}
	return out.Close()
}

type entry struct {
	rel  string // slash-separated, relative to the source directory
	dir  bool
	exec bool
}

func collect(src string) ([]entry, error) {
	var es []entry
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == src {
			return err
		}
		r, _ := filepath.Rel(src, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		es = append(es, entry{rel: filepath.ToSlash(r), dir: d.IsDir(), exec: info.Mode()&0o111 != 0})
		return nil
	})
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.rel, b.rel) })
	return es, err
}

func mode(e entry) int64 {
	if e.dir || e.exec {
		return 0o755
	}
	return 0o644
}

func writeTar(w io.Writer, src, prefix string, es []entry, mtime time.Time) error {
	// gzip's header carries no name and no time: gzip.Writer leaves both
	// empty unless set.
	gz, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	hdr := func(name string, typ byte, m, size int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: typ, Mode: m, Size: size, ModTime: mtime,
			Uname: "root", Gname: "root", Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(prefix+"/", tar.TypeDir, 0o755, 0)); err != nil {
		return err
	}
	for _, e := range es {
		name := path.Join(prefix, e.rel)
		if e.dir {
			if err := tw.WriteHeader(hdr(name+"/", tar.TypeDir, 0o755, 0)); err != nil {
				return err
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(e.rel)))
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr(name, tar.TypeReg, mode(e), int64(len(b)))); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeZip(w io.Writer, src, prefix string, es []entry, mtime time.Time) error {
	zw := zip.NewWriter(w)
	add := func(name string, m int64, method uint16) (io.Writer, error) {
		h := &zip.FileHeader{Name: name, Method: method, Modified: mtime}
		fm := fs.FileMode(m)
		if method == zip.Store {
			fm |= fs.ModeDir
		}
		h.SetMode(fm)
		return zw.CreateHeader(h)
	}
	if _, err := add(prefix+"/", 0o755, zip.Store); err != nil {
		return err
	}
	for _, e := range es {
		name := path.Join(prefix, e.rel)
		if e.dir {
			if _, err := add(name+"/", 0o755, zip.Store); err != nil {
				return err
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(e.rel)))
		if err != nil {
			return err
		}
		f, err := add(name, mode(e), zip.Deflate)
		if err != nil {
			return err
		}
		if _, err := f.Write(b); err != nil {
			return err
		}
	}
	return zw.Close()
}

func sums(out string, files []string) error {
	slices.Sort(files)
	var b []byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		h := sha256.Sum256(data)
		b = fmt.Appendf(b, "%s  %s\n", hex.EncodeToString(h[:]), filepath.Base(f))
	}
	return os.WriteFile(out, b, 0o644)
}

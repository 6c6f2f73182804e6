package fwbundle

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwimage"
)

// Open reads a bundle zip and checks it: the manifest parses, every part's
// file is there, within the size limits, and matches the manifest's
// checksums. Nothing is returned from a bundle that fails any of these.
// Partition names (ptn) are resolved through the bundle's partition table.
func Open(name string) (*Bundle, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, &Error{Kind: ErrBadZip, File: name, Cause: unwrapPath(err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &Error{Kind: ErrBadZip, File: name, Cause: unwrapPath(err)}
	}
	if st.IsDir() {
		return nil, &Error{Kind: ErrBadZip, File: name, Detail: "is a directory"}
	}
	return Read(f, st.Size(), name)
}

// unwrapPath drops *fs.PathError's "open NAME:" prefix, since Error
// already names the file.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// Read is Open for a zip already in hand; name is used in messages.
func Read(r io.ReaderAt, size int64, name string) (*Bundle, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, &Error{Kind: ErrBadZip, File: name, Cause: err}
	}
	z, err := indexZip(zr)
	if err != nil {
		return nil, &Error{Kind: ErrBadZip, File: name, Detail: err.Error()}
	}
	mf, err := z.manifest()
	if err != nil {
		return nil, &Error{Kind: ErrNoManifest, File: name, Detail: err.Error()}
	}
	if mf.UncompressedSize64 > maxManifestSize {
		return nil, &Error{Kind: ErrTooLarge, File: name, Detail: fmt.Sprintf("%s: %d bytes", mf.Name, mf.UncompressedSize64)}
	}
	raw, err := readEntry(mf)
	if err != nil {
		return nil, &Error{Kind: ErrBadZip, File: name, Detail: mf.Name, Cause: err}
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, &Error{Kind: ErrBadManifest, File: name, Detail: mf.Name, Cause: err}
	}
	b := &Bundle{Source: name, Manifest: m, Platform: platformKey(m.Platform)}
	if err := b.loadParts(z, path.Dir(mf.Name), name); err != nil {
		return nil, err
	}
	return b, nil
}

// platformKey spells a platform the way chips does ("ESP32-C3" and
// "esp32c3" are the same); a platform mos does not know is kept as is.
func platformKey(p string) string {
	if c, err := chips.ByKey(p); err == nil {
		return c.Key
	}
	return strings.ToLower(p)
}

// zipIndex finds entries by path and by base name: mos matches part files
// by base name, since its build nests them in a folder and
// create-fw-bundle does not.
type zipIndex struct {
	byName map[string]*zip.File
	byBase map[string][]*zip.File
}

func indexZip(zr *zip.Reader) (*zipIndex, error) {
	z := &zipIndex{byName: map[string]*zip.File{}, byBase: map[string][]*zip.File{}}
	for _, f := range zr.File {
		if err := checkEntryName(f.Name); err != nil {
			return nil, err
		}
		if strings.HasSuffix(f.Name, "/") {
			continue // a folder
		}
		if z.byName[f.Name] != nil {
			return nil, fmt.Errorf("entry %q appears twice", f.Name)
		}
		z.byName[f.Name] = f
		base := path.Base(f.Name)
		z.byBase[base] = append(z.byBase[base], f)
	}
	return z, nil
}

// checkEntryName refuses names that would escape a folder if the zip were
// ever extracted (absolute, "..", backslashes, NUL), which no bundle tool
// writes: such a zip was made to attack, or is damaged.
func checkEntryName(name string) error {
	n := strings.TrimSuffix(name, "/")
	if !fs.ValidPath(n) || n == "." || strings.ContainsAny(name, "\\\x00") {
		return fmt.Errorf("unsafe entry name %q", name)
	}
	return nil
}

// manifest finds manifest.json at the root or inside one top-level folder.
func (z *zipIndex) manifest() (*zip.File, error) {
	if f := z.byName["manifest.json"]; f != nil {
		return f, nil
	}
	var found []string
	for _, f := range z.byBase["manifest.json"] {
		if strings.Count(f.Name, "/") == 1 {
			found = append(found, f.Name)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("looked at the root and in top-level folders")
	case 1:
		return z.byName[found[0]], nil
	}
	slices.Sort(found)
	return nil, fmt.Errorf("more than one: %s", strings.Join(found, ", "))
}

// find returns the entry a part's src names: the path next to the
// manifest, else the one entry with that base name.
func (z *zipIndex) find(dir, src string) (*zip.File, error) {
	if f := z.byName[path.Join(dir, src)]; f != nil {
		return f, nil
	}
	switch fs := z.byBase[path.Base(src)]; len(fs) {
	case 0:
		return nil, fmt.Errorf("%q is not in the zip", src)
	case 1:
		return fs[0], nil
	}
	return nil, fmt.Errorf("%q matches several entries", src)
}

// readEntry reads an entry whose declared size has been checked. The
// reader never returns more than the declared size: archive/zip fails an
// entry that inflates past it, and the CRC check catches the rest.
func readEntry(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if err != nil {
		return nil, err
	}
	if uint64(len(data)) != f.UncompressedSize64 {
		return nil, fmt.Errorf("%s: %d bytes, header says %d", f.Name, len(data), f.UncompressedSize64)
	}
	return data, nil
}

// loadParts reads, checks and resolves every part of b.Manifest. All
// files are read and verified before any partition name is resolved or
// fill allocated, so a damaged bundle fails as such.
func (b *Bundle) loadParts(z *zipIndex, dir, name string) error {
	m := b.Manifest
	if len(m.Parts) == 0 {
		return &Error{Kind: ErrBadManifest, File: name, Detail: "no parts"}
	}
	names := make([]string, 0, len(m.Parts))
	for n := range m.Parts {
		names = append(names, n)
	}
	slices.Sort(names)

	var total uint64
	read := map[*zip.File][]byte{} // parts may share a file
	for _, pn := range names {
		mp := m.Parts[pn]
		bad := func(kind error, detail string, cause error) error {
			return &Error{Kind: kind, File: name, Part: pn, Detail: detail, Cause: cause}
		}
		p := Part{Name: pn, Type: mp.Type, Addr: uint32(mp.Addr), Flash: mp.Flashed(), Manifest: mp}
		switch {
		case mp.Src != "" && mp.Fill != nil:
			return bad(ErrBadManifest, "has both src and fill", nil)
		case mp.Src != "":
			f, err := z.find(dir, mp.Src)
			if err != nil {
				return bad(ErrMissingSrc, err.Error(), nil)
			}
			data, ok := read[f]
			if !ok {
				if f.UncompressedSize64 > MaxPartSize {
					return bad(ErrTooLarge, fmt.Sprintf("%s: %d bytes", f.Name, f.UncompressedSize64), nil)
				}
				if total += f.UncompressedSize64; total > MaxTotalSize {
					return bad(ErrTooLarge, fmt.Sprintf("parts add up to more than %d bytes", MaxTotalSize), nil)
				}
				if data, err = readEntry(f); err != nil {
					return bad(ErrBadZip, "", err)
				}
				read[f] = data
			}
			if err := verifySums(name, pn, mp, data); err != nil {
				return err
			}
			p.Data, p.Source = data, name+":"+f.Name
		case mp.Fill != nil:
			p.Source = fmt.Sprintf("fill 0x%02x", *mp.Fill) // sized below
		default:
			return bad(ErrBadManifest, "has neither src nor fill", nil)
		}
		b.Parts = append(b.Parts, p)
	}
	fillSizes, err := b.resolvePartitions(name)
	if err != nil {
		return err
	}
	// Every fill is sized and the total checked before any is allocated.
	for i := range b.Parts {
		p := &b.Parts[i]
		if p.Manifest.Fill == nil {
			continue
		}
		size, ok := fillSizes[p.Name]
		if !ok {
			size = uint32(p.Manifest.Size)
			fillSizes[p.Name] = size
		}
		total += uint64(size)
		switch {
		case size == 0:
			return &Error{Kind: ErrBadManifest, File: name, Part: p.Name, Detail: "fill part without a size"}
		case size > MaxPartSize:
			return &Error{Kind: ErrTooLarge, File: name, Part: p.Name, Detail: fmt.Sprintf("fill of %d bytes", size)}
		case total > MaxTotalSize:
			return &Error{Kind: ErrTooLarge, File: name, Part: p.Name, Detail: fmt.Sprintf("parts add up to more than %d bytes", MaxTotalSize)}
		}
	}
	for i := range b.Parts {
		if p := &b.Parts[i]; p.Manifest.Fill != nil {
			p.Data = bytes.Repeat([]byte{*p.Manifest.Fill}, int(fillSizes[p.Name]))
		}
	}
	b.sortParts()
	return nil
}

// verifySums checks what the manifest has of SHA-1 and SHA-256. A part
// without either is accepted: old hand-made bundles have none.
func verifySums(file, part string, mp *ManifestPart, data []byte) error {
	check := func(algo, want string, sum []byte) error {
		if want == "" {
			return nil
		}
		if got := hex.EncodeToString(sum); !strings.EqualFold(got, want) {
			return &ChecksumError{File: file, Part: part, Algo: algo, Want: strings.ToLower(want), Got: got}
		}
		return nil
	}
	s1 := sha1.Sum(data)
	if err := check("sha1", mp.CSSHA1, s1[:]); err != nil {
		return err
	}
	s256 := sha256.Sum256(data)
	return check("sha256", mp.CSSHA256, s256[:])
}

// resolvePartitions turns partition names into addresses as mos's ESP32
// flasher does: an app goes to its partition's offset, any other part to
// offset + addr (addr is then relative), and a fill of size 0 runs to the
// partition's end. Without a "pt" part, ptn is informational and addr
// stands (ESP8266 bundles). It returns the sizes of such fills by part
// name, for the caller to check against the limits before allocating.
func (b *Bundle) resolvePartitions(name string) (map[string]uint32, error) {
	var ptPart *Part
	for i := range b.Parts {
		if b.Parts[i].Type == "pt" && b.Parts[i].Data != nil {
			ptPart = &b.Parts[i]
			break
		}
	}
	fillSizes := map[string]uint32{}
	if ptPart == nil {
		return fillSizes, nil
	}
	var pt *fwimage.PartitionTable
	for i := range b.Parts {
		p := &b.Parts[i]
		if p.Manifest.Ptn == "" {
			continue
		}
		bad := func(detail string, cause error) error {
			return &Error{Kind: ErrBadManifest, File: name, Part: p.Name, Detail: detail, Cause: cause}
		}
		if pt == nil {
			var err error
			if pt, err = fwimage.ParsePartitionTable(ptPart.Data); err != nil {
				return nil, bad(fmt.Sprintf("partition table %q, needed to find ptn %q", ptPart.Name, p.Manifest.Ptn), err)
			}
		}
		ptn := pt.Find(p.Manifest.Ptn)
		if ptn == nil {
			return nil, bad(fmt.Sprintf("partition %q is not in the partition table", p.Manifest.Ptn), nil)
		}
		if p.Type == "app" {
			p.Addr = ptn.Offset
			continue
		}
		rel := uint32(p.Manifest.Addr)
		if rel >= ptn.Size {
			return nil, bad(fmt.Sprintf("addr 0x%x is past the end of partition %q (0x%x bytes)", rel, ptn.Label, ptn.Size), nil)
		}
		p.Addr = ptn.Offset + rel
		if p.Manifest.Fill != nil && p.Manifest.Size == 0 {
			fillSizes[p.Name] = ptn.Size - rel
		}
	}
	return fillSizes, nil
}

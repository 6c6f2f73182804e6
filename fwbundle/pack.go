package fwbundle

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
)

// Pack writes a bundle zip to w: manifest.json first (mos's updater reads
// it before the parts), then each part file, flat, sorted by name.
//
// srcs holds the content of every part's Src, by that name. Pack fills in
// m's checksums (cs_sha1, cs_sha256) and, where it is 0, the size of each
// part with a src, so that m afterwards describes the bundle written.
//
// The output depends only on m and srcs: entries carry a fixed date
// (1980-01-01, the zip epoch) and no extra fields, the manifest's keys are
// sorted, and every local header carries the CRC and sizes (no data
// descriptors, which mos's updater refuses).
func Pack(w io.Writer, m *Manifest, srcs map[string][]byte) error {
	if len(m.Parts) == 0 {
		return errors.New("fwbundle: a bundle needs at least one part")
	}
	files := map[string][]byte{}
	for name, p := range m.Parts {
		switch {
		case p.Src == "" && p.Fill == nil:
			return fmt.Errorf("fwbundle: part %q has neither src nor fill", name)
		case p.Src != "" && p.Fill != nil:
			return fmt.Errorf("fwbundle: part %q has both src and fill", name)
		case p.Src == "":
			if p.Size == 0 && p.Ptn == "" {
				return fmt.Errorf("fwbundle: fill part %q needs a size", name)
			}
			continue
		}
		if err := checkSrcName(p.Src); err != nil {
			return fmt.Errorf("fwbundle: part %q: %w", name, err)
		}
		data, ok := srcs[p.Src]
		if !ok {
			return fmt.Errorf("fwbundle: part %q: no data for src %q", name, p.Src)
		}
		if len(data) > MaxPartSize {
			return fmt.Errorf("fwbundle: part %q: %d bytes, at most %d", name, len(data), MaxPartSize)
		}
		s1, s256 := sha1.Sum(data), sha256.Sum256(data)
		p.CSSHA1, p.CSSHA256 = hex.EncodeToString(s1[:]), hex.EncodeToString(s256[:])
		if p.Size == 0 {
			p.Size = Number(len(data))
		}
		files[p.Src] = data
	}
	manifest, err := m.Encode()
	if err != nil {
		return fmt.Errorf("fwbundle: manifest: %w", err)
	}

	zw := zip.NewWriter(w)
	if err := writeEntry(zw, "manifest.json", manifest); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := writeEntry(zw, n, files[n]); err != nil {
			return err
		}
	}
	return zw.Close()
}

// checkSrcName: Pack writes flat bundles (as create-fw-bundle did), so a
// src is a plain file name.
func checkSrcName(src string) error {
	if strings.ContainsAny(src, "/\\\x00") || src == "." || src == ".." || src == "manifest.json" {
		return fmt.Errorf("src %q must be a plain file name other than manifest.json", src)
	}
	return nil
}

// zipEpoch is 1980-01-01 00:00 in MS-DOS date format (years since 1980 <<
// 9 | month << 5 | day), the earliest date a zip can carry.
const zipEpoch = 0<<9 | 1<<5 | 1

// writeEntry writes one entry, deflated unless that does not make it
// smaller. The compression is done here and the entry written raw, so
// that the CRC and sizes go in the local header.
func writeEntry(zw *zip.Writer, name string, data []byte) error {
	var comp bytes.Buffer
	fw, err := flate.NewWriter(&comp, flate.BestCompression)
	if err != nil {
		return err
	}
	fw.Write(data) // a bytes.Buffer does not fail
	if err := fw.Close(); err != nil {
		return err
	}
	method, body := zip.Deflate, comp.Bytes()
	if len(body) >= len(data) {
		method, body = zip.Store, data
	}
	h := &zip.FileHeader{
		Name:               name,
		Method:             method,
		ModifiedDate:       zipEpoch,
		CRC32:              crc32.ChecksumIEEE(data),
		CompressedSize64:   uint64(len(body)),
		UncompressedSize64: uint64(len(data)),
		CreatorVersion:     20, // MS-DOS host, zip 2.0: no Unix modes to vary
		ReaderVersion:      20,
	}
	ew, err := zw.CreateRaw(h)
	if err != nil {
		return fmt.Errorf("fwbundle: %s: %w", name, err)
	}
	_, err = ew.Write(body)
	return err
}

package fwimage

import (
	"bytes"
	"testing"

	"github.com/mos-tool/mos/chips"
)

func FuzzParse(f *testing.F) {
	for _, c := range chips.All() {
		s := testSpec(c, false, nil)
		f.Add(mustBuild(f, s))
		if !c.IsESP8266() {
			f.Add(mustBuild(f, testSpec(c, true, testDesc())))
		}
	}
	f.Add(buildV2(f))
	f.Add(unalign(nil))
	f.Add([]byte{MagicV1})
	f.Add([]byte{MagicV1, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{MagicV2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F})

	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		img, err := Parse(data)
		if err == nil {
			checkParsed(t, img, data)
		}
		for _, c := range chips.All() {
			if img, err := ParseFor(c, data); err == nil {
				checkParsed(t, img, data)
			}
		}
		if !bytes.Equal(data, orig) {
			t.Fatal("parsing modified the input")
		}
		cp := bytes.Clone(data)
		if err := SetFlashParams(cp, 2, 1, 0xF); err == nil {
			if img, err := Parse(cp); err != nil {
				t.Fatalf("patched image no longer parses: %v", err)
			} else if (img.Verify() == nil) != (verifyBytes(data) == nil) {
				// Bytes 2-3 are under no checksum, and the trailer
				// is recomputed only when it was right.
				t.Fatalf("patching changed validity")
			}
		}
	})
}

func verifyBytes(data []byte) error {
	img, err := Parse(data)
	if err != nil {
		return err
	}
	return img.Verify()
}

func checkParsed(t *testing.T, img *Image, data []byte) {
	if img.Length > len(data) || len(img.Bytes()) != img.Length {
		t.Fatalf("length %d of %d", img.Length, len(data))
	}
	for _, s := range img.Segments {
		if s.FileOffset < 0 || s.FileOffset+len(s.Data) > img.Length {
			t.Fatalf("segment at %d+%d beyond %d", s.FileOffset, len(s.Data), img.Length)
		}
	}
	_ = img.Verify()
	for _, c := range chips.All() {
		_ = img.CheckChip(c)
	}
}

func FuzzPartitionTable(f *testing.F) {
	f.Add(must(defaultTable.Encode()))
	f.Add([]byte{0xAA, 0x50})
	f.Add([]byte{0xEB, 0xEB})
	f.Fuzz(func(t *testing.T, data []byte) {
		tbl, err := ParsePartitionTable(data)
		if err != nil {
			return
		}
		b, err := tbl.Encode()
		if err != nil {
			return // e.g. a label with bytes past a NUL is not re-encoded
		}
		again, err := ParsePartitionTable(b)
		if err != nil || len(again.Partitions) != len(tbl.Partitions) {
			t.Fatalf("re-encoded table: %v", err)
		}
	})
}

package fwbundle

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwimage"
)

// entry is one file of a hand-made zip.
type entry struct {
	name string
	data []byte
}

// makeZip writes entries in order, stored (uncompressed), so that tests
// can corrupt known bytes.
func makeZip(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha1hex(b []byte) string   { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }
func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func chip(t *testing.T, key string) *chips.Chip {
	t.Helper()
	c, err := chips.ByKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testImage builds a small valid image for chip key.
func testImage(t *testing.T, key string) []byte {
	t.Helper()
	c := chip(t, key)
	s := fwimage.Spec{Chip: c, FlashMode: 2, Entry: 0x40080000,
		Segments: []fwimage.Segment{{Addr: 0x3FFE8000, Data: bytes.Repeat([]byte{1, 2, 3, 4}, 64)}}}
	if !c.IsESP8266() {
		s.HashAppended = true
		s.Segments[0].Addr = 0x3F400020
	}
	img, err := fwimage.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testTable is a partition table: nvs at 0x9000, factory app at 0x10000,
// fs at 0x110000.
func testTable(t testing.TB) []byte {
	t.Helper()
	pt := &fwimage.PartitionTable{HasMD5: true, Partitions: []fwimage.Partition{
		{Type: fwimage.PartTypeData, SubType: fwimage.PartSubDataNVS, Offset: 0x9000, Size: 0x6000, Label: "nvs"},
		{Type: fwimage.PartTypeApp, SubType: fwimage.PartSubAppFactory, Offset: 0x10000, Size: 0x100000, Label: "factory"},
		{Type: fwimage.PartTypeData, SubType: fwimage.PartSubDataLittleFS, Offset: 0x110000, Size: 0x10000, Label: "fs"},
	}}
	b, err := pt.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// badInput checks that err is a bad input of the given kind, with exit
// code 9 and a hint, as mos's error printer needs.
func badInput(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want %v", err, kind)
	}
	var ec interface{ ExitCode() int }
	var h interface{ Hint() string }
	if !errors.As(err, &ec) || ec.ExitCode() != exitBadInput {
		t.Errorf("%v: no exit code %d", err, exitBadInput)
	}
	if !errors.As(err, &h) || h.Hint() == "" {
		t.Errorf("%v: no hint", err)
	}
}

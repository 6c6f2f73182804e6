package fwimage

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// ESP-IDF's "single factory app" default table.
var defaultTable = &PartitionTable{
	HasMD5: true,
	Partitions: []Partition{
		{Type: PartTypeData, SubType: PartSubDataNVS, Offset: 0x9000, Size: 0x6000, Label: "nvs"},
		{Type: PartTypeData, SubType: PartSubDataPHY, Offset: 0xF000, Size: 0x1000, Label: "phy_init"},
		{Type: PartTypeApp, SubType: PartSubAppFactory, Offset: 0x10000, Size: 0x100000, Label: "factory"},
		{Type: PartTypeData, SubType: PartSubDataSPIFFS, Offset: 0x110000, Size: 0xF0000, Label: "sixteen-chars-ok", Flags: PartFlagReadOnly},
	},
}

func TestPartitionRoundTrip(t *testing.T) {
	for _, md5row := range []bool{true, false} {
		in := *defaultTable
		in.HasMD5 = md5row
		b, err := in.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != PartitionTableMaxLen {
			t.Fatalf("length %d", len(b))
		}
		out, err := ParsePartitionTable(b)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(*out) != fmt.Sprint(in) {
			t.Fatalf("got %+v\nwant %+v", out, in)
		}
		// Parsing just the used rows (no end marker) gives the same.
		used := len(in.Partitions) * PartitionEntryLen
		if md5row {
			used += PartitionEntryLen
		}
		if out, err := ParsePartitionTable(b[:used]); err != nil || fmt.Sprint(*out) != fmt.Sprint(in) {
			t.Fatalf("used rows only: %+v, %v", out, err)
		}
		if !bytes.Equal(b[used:], bytes.Repeat([]byte{0xFF}, len(b)-used)) {
			t.Fatal("table not padded with 0xFF")
		}
	}
}

func TestPartitionLayout(t *testing.T) {
	b := must(defaultTable.Encode())
	want := []byte{0xAA, 0x50, 0x01, 0x02, 0x00, 0x90, 0, 0, 0x00, 0x60, 0, 0, 'n', 'v', 's', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(b[:32], want) {
		t.Fatalf("first row %x\nwant      %x", b[:32], want)
	}
	if string(b[3*32+12:3*32+28]) != "sixteen-chars-ok" || binary.LittleEndian.Uint32(b[3*32+28:]) != PartFlagReadOnly {
		t.Fatalf("fourth row %x", b[96:128])
	}
	row := b[4*32 : 5*32]
	sum := md5.Sum(b[:4*32])
	if !bytes.Equal(row[:16], append([]byte{0xEB, 0xEB}, bytes.Repeat([]byte{0xFF}, 14)...)) || !bytes.Equal(row[16:], sum[:]) {
		t.Fatalf("MD5 row %x", row)
	}
	if p := defaultTable.Find("factory"); p == nil || p.Offset != 0x10000 {
		t.Fatalf("Find: %+v", p)
	}
	if defaultTable.Find("ota_0") != nil {
		t.Fatal("Find found a missing label")
	}
}

func TestPartitionErrors(t *testing.T) {
	good := must(defaultTable.Encode())
	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"entry changed", flip(4), ErrPartitionMD5},
		{"md5 changed", flip(4*32 + 20), ErrPartitionMD5},
		{"bad magic", set(32, 0xAB), ErrBadMagic},
		{"partial row", cut(40), ErrTruncated},
	} {
		if _, err := ParsePartitionTable(tc.mutate(bytes.Clone(good))); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if tbl, err := ParsePartitionTable(bytes.Repeat([]byte{0xFF}, PartitionTableMaxLen)); err != nil || len(tbl.Partitions) != 0 {
		t.Errorf("erased table: %+v, %v", tbl, err)
	}

	for name, tbl := range map[string]*PartitionTable{
		"long label": {Partitions: []Partition{{Label: "seventeen-chars!!"}}},
		"NUL label":  {Partitions: []Partition{{Label: "a\x00b"}}},
		"too many":   {Partitions: make([]Partition, 95), HasMD5: true},
		"too many 2": {Partitions: make([]Partition, 96)},
	} {
		if _, err := tbl.Encode(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	// The largest tables that fit.
	for _, tbl := range []*PartitionTable{{Partitions: make([]Partition, 94), HasMD5: true}, {Partitions: make([]Partition, 95)}} {
		b, err := tbl.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ParsePartitionTable(b); err != nil || len(got.Partitions) != len(tbl.Partitions) {
			t.Fatalf("%d partitions: %v", len(tbl.Partitions), err)
		}
	}
}

package sim

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/mos-tool/mos/fwimage"
)

// otaEntry builds one esp_ota_select_entry_t as ESP-IDF's esp_ota_set_boot_partition
// and otatool write it: ota_seq, 20 label bytes of 0xFF, ota_state, CRC-32 of ota_seq.
func otaEntry(seq uint32, goodCRC bool) []byte {
	e := make([]byte, otaEntrySize)
	binary.LittleEndian.PutUint32(e, seq)
	for i := 4; i < 24; i++ {
		e[i] = 0xFF
	}
	binary.LittleEndian.PutUint32(e[24:], 0xFFFFFFFF) // ota_state: undefined
	crc := crc32.Update(0xFFFFFFFF, crc32.IEEETable, e[:4])
	if !goodCRC {
		crc ^= 1
	}
	binary.LittleEndian.PutUint32(e[28:], crc)
	return e
}

// otadataWith lays out an 8 KiB otadata partition with entries in sector
// 0 and sector 1 (nil leaves a sector erased).
func otadataWith(a, b []byte) []byte {
	d := make([]byte, 2*otaEntryStride)
	for i := range d {
		d[i] = 0xFF
	}
	copy(d, a)
	copy(d[otaEntryStride:], b)
	return d
}

// The CRC of ota_seq 1 as ESP-IDF writes it into otadata: 0x4743989A.
func TestOtaEntryCRC(t *testing.T) {
	if got := binary.LittleEndian.Uint32(otaEntry(1, true)[28:]); got != 0x4743989A {
		t.Fatalf("crc of ota_seq 1 = %08x, want 4743989a", got)
	}
}

func TestPickAppFromOtadata(t *testing.T) {
	app := func(label string, sub uint8, off uint32) fwimage.Partition {
		return fwimage.Partition{Type: fwimage.PartTypeApp, SubType: sub, Offset: off, Size: 0x100000, Label: label}
	}
	otadataPart := fwimage.Partition{Type: fwimage.PartTypeData, SubType: fwimage.PartSubDataOTA, Offset: 0xD000, Size: 0x2000, Label: "otadata"}
	factory := app("factory", fwimage.PartSubAppFactory, 0x10000)
	ota0 := app("ota_0", fwimage.PartSubAppOTA0, 0x110000)
	ota1 := app("ota_1", fwimage.PartSubAppOTA0+1, 0x210000)
	withFactory := []fwimage.Partition{otadataPart, factory, ota0, ota1}
	noFactory := []fwimage.Partition{otadataPart, ota0, ota1}
	tests := []struct {
		name    string
		parts   []fwimage.Partition
		otadata []byte
		want    string
	}{
		{"erased otadata boots factory", withFactory, otadataWith(nil, nil), "factory"},
		{"seq 1 boots ota_0", withFactory, otadataWith(otaEntry(1, true), nil), "ota_0"},
		{"seq 2 in the second sector boots ota_1", withFactory, otadataWith(nil, otaEntry(2, true)), "ota_1"},
		{"highest valid seq wins", withFactory, otadataWith(otaEntry(4, true), otaEntry(3, true)), "ota_1"},
		{"seq wraps over the slots", withFactory, otadataWith(otaEntry(5, true), nil), "ota_0"},
		{"bad CRC is ignored", withFactory, otadataWith(otaEntry(1, true), otaEntry(2, false)), "ota_0"},
		{"no valid entry boots factory", withFactory, otadataWith(otaEntry(2, false), otaEntry(3, false)), "factory"},
		{"no factory, no valid entry boots ota_0", noFactory, otadataWith(nil, nil), "ota_0"},
		{"no otadata partition boots factory", []fwimage.Partition{factory, ota0, ota1}, otadataWith(otaEntry(2, true), nil), "factory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pt := &fwimage.PartitionTable{Partitions: tc.parts}
			got := pickApp(pt, func(p *fwimage.Partition) []byte {
				if p.Label != "otadata" {
					t.Fatalf("read %s as otadata", p.Label)
				}
				return tc.otadata
			})
			if got == nil || got.Label != tc.want {
				t.Fatalf("booted %v, want %s", got, tc.want)
			}
		})
	}
}

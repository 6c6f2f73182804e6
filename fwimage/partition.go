package fwimage

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
)

// Partition table (ESP-IDF's esp_partition_info_t rows), flashed at
// PartitionTableOffset and padded with 0xFF to PartitionTableMaxLen:
//
//	entry  0xAA 0x50, type, subtype, offset u32, size u32, label[16], flags u32
//	MD5    0xEB 0xEB, 14 x 0xFF, MD5 of every row before it
//	end    0xFF...
const (
	PartitionTableOffset = 0x8000
	PartitionTableMaxLen = 0xC00 // ESP_PARTITION_TABLE_MAX_LEN
	PartitionEntryLen    = 32
	PartitionLabelLen    = 16
)

// Partition types and the common subtypes (ESP-IDF's esp_partition_type_t
// and esp_partition_subtype_t).
const (
	PartTypeApp  = 0x00
	PartTypeData = 0x01

	PartSubAppFactory = 0x00
	PartSubAppOTA0    = 0x10 // ota_N is 0x10 + N, N < 16
	PartSubAppTest    = 0x20

	PartSubDataOTA      = 0x00
	PartSubDataPHY      = 0x01
	PartSubDataNVS      = 0x02
	PartSubDataCoredump = 0x03
	PartSubDataNVSKeys  = 0x04
	PartSubDataEfuse    = 0x05
	PartSubDataFAT      = 0x81
	PartSubDataSPIFFS   = 0x82
	PartSubDataLittleFS = 0x83

	PartFlagEncrypted = 1 << 0
	PartFlagReadOnly  = 1 << 1
)

// ErrPartitionMD5 means the table's MD5 row does not match its entries.
var ErrPartitionMD5 = errors.New("fwimage: partition table MD5 mismatch")

var (
	partEntryMagic = []byte{0xAA, 0x50}
	partMD5Magic   = []byte{0xEB, 0xEB}
)

// Partition is one table entry.
type Partition struct {
	Type, SubType uint8
	Offset, Size  uint32
	Label         string // at most 16 bytes
	Flags         uint32
}

// PartitionTable is a parsed table.
type PartitionTable struct {
	Partitions []Partition
	// HasMD5: the table carries an MD5 row (ESP-IDF's default; the
	// bootloader verifies it).
	HasMD5 bool
}

// ParsePartitionTable reads a table from data (usually the 0xC00 bytes at
// 0x8000). It stops at the first end row (magic 0xFFFF) and verifies an MD5
// row against the rows before it.
func ParsePartitionTable(data []byte) (*PartitionTable, error) {
	t := &PartitionTable{}
	for off := 0; off < len(data) && off < PartitionTableMaxLen; off += PartitionEntryLen {
		if len(data)-off < PartitionEntryLen {
			return nil, fmt.Errorf("%w: partition row at 0x%x", ErrTruncated, off)
		}
		row := data[off : off+PartitionEntryLen]
		switch {
		case bytes.HasPrefix(row, partEntryMagic):
			le := binary.LittleEndian
			t.Partitions = append(t.Partitions, Partition{
				Type:    row[2],
				SubType: row[3],
				Offset:  le.Uint32(row[4:]),
				Size:    le.Uint32(row[8:]),
				Label:   cString(row[12:28]),
				Flags:   le.Uint32(row[28:]),
			})
		case bytes.HasPrefix(row, partMD5Magic):
			// The bootloader compares only the digest, not the 0xFF filler.
			if md5.Sum(data[:off]) != [16]byte(row[16:]) {
				return nil, fmt.Errorf("%w: row at 0x%x", ErrPartitionMD5, off)
			}
			t.HasMD5 = true
		case row[0] == 0xFF && row[1] == 0xFF:
			return t, nil
		default:
			return nil, fmt.Errorf("%w: partition row at 0x%x starts %02x %02x", ErrBadMagic, off, row[0], row[1])
		}
	}
	return t, nil
}

// Encode returns the table padded with 0xFF to PartitionTableMaxLen, as it
// is flashed.
func (t *PartitionTable) Encode() ([]byte, error) {
	rows := len(t.Partitions)
	if t.HasMD5 {
		rows++
	}
	// At least one end row must follow.
	if (rows+1)*PartitionEntryLen > PartitionTableMaxLen {
		return nil, fmt.Errorf("fwimage: %d partitions do not fit a %d-byte table", len(t.Partitions), PartitionTableMaxLen)
	}
	out := bytes.Repeat([]byte{0xFF}, PartitionTableMaxLen)
	le := binary.LittleEndian
	off := 0
	for _, p := range t.Partitions {
		if len(p.Label) > PartitionLabelLen || bytes.IndexByte([]byte(p.Label), 0) >= 0 {
			return nil, fmt.Errorf("fwimage: partition label %q: longer than %d bytes or contains NUL", p.Label, PartitionLabelLen)
		}
		row := out[off : off+PartitionEntryLen]
		copy(row, partEntryMagic)
		row[2], row[3] = p.Type, p.SubType
		le.PutUint32(row[4:], p.Offset)
		le.PutUint32(row[8:], p.Size)
		clear(row[12:28])
		copy(row[12:28], p.Label)
		le.PutUint32(row[28:], p.Flags)
		off += PartitionEntryLen
	}
	if t.HasMD5 {
		copy(out[off:], partMD5Magic) // bytes 2-15 stay 0xFF
		sum := md5.Sum(out[:off])
		copy(out[off+16:], sum[:])
	}
	return out, nil
}

// Find returns the partition with the given label, or nil.
func (t *PartitionTable) Find(label string) *Partition {
	for i := range t.Partitions {
		if t.Partitions[i].Label == label {
			return &t.Partitions[i]
		}
	}
	return nil
}

package fwbundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwimage"
)

// ImageSpec describes an ESP image for BuildImageSpec (JSON).
type ImageSpec struct {
	Chip         string        `json:"chip,omitempty"` // default: the bundle's platform
	FlashMode    string        `json:"flash_mode"`     // qio, qout, dio, dout
	FlashSize    string        `json:"flash_size"`     // "4MB"
	FlashFreq    string        `json:"flash_freq"`     // "40m"
	Entry        Number        `json:"entry"`
	HashAppended bool          `json:"hash_appended,omitempty"` // ESP32 family: append SHA-256
	AppDesc      *AppDescSpec  `json:"app_desc,omitempty"`      // ESP32 family app images
	Segments     []SegmentSpec `json:"segments"`
}

// SegmentSpec is one image segment: load address and content.
type SegmentSpec struct {
	Addr Number  `json:"addr"`
	Data []Piece `json:"data"`
}

// AppDescSpec is ESP-IDF's esp_app_desc_t, field names as in C. It goes at
// the start of the first segment, before that segment's data.
type AppDescSpec struct {
	ProjectName   string `json:"project_name"`
	Version       string `json:"version"`
	Date          string `json:"date"` // "Jan  1 2025", as __DATE__
	Time          string `json:"time"` // "00:00:00", as __TIME__
	IDFVer        string `json:"idf_ver"`
	SecureVersion uint32 `json:"secure_version,omitempty"`
	// AppELFSHA256 in hex. Default: SHA-256 of the segments' generated
	// data, standing in for the ELF file the image would be made from.
	AppELFSHA256       string `json:"app_elf_sha256,omitempty"`
	MinEfuseBlkRevFull uint16 `json:"min_efuse_blk_rev_full,omitempty"`
	MaxEfuseBlkRevFull uint16 `json:"max_efuse_blk_rev_full,omitempty"`
	MMUPageSize        uint8  `json:"mmu_page_size,omitempty"` // log2 of the page size
}

// BuildImageSpec builds the image described by the spec file at path;
// platform is the chip when the spec does not name one.
func BuildImageSpec(path, platform string) ([]byte, error) {
	var s ImageSpec
	if err := readSpec(path, &s); err != nil {
		return nil, err
	}
	img, err := s.Build(filepath.Dir(path), platform)
	if err != nil {
		return nil, &Error{Kind: ErrBadManifest, File: path, Cause: err}
	}
	return img, nil
}

func readSpec(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return &Error{Kind: ErrMissingSrc, File: path, Cause: unwrapPath(err)}
	}
	if err := strictJSON(raw, v); err != nil {
		return &Error{Kind: ErrBadManifest, File: path, Cause: err}
	}
	return nil
}

// Build encodes the image; dir is where piece files are looked up.
func (s *ImageSpec) Build(dir, platform string) ([]byte, error) {
	chip, err := chips.ByKey(orDefault(s.Chip, platform))
	if err != nil {
		return nil, err
	}
	mode, err := fwimage.ModeCode(s.FlashMode)
	if err != nil {
		return nil, err
	}
	size, err := fwimage.SizeCodeByName(chip, s.FlashSize)
	if err != nil {
		return nil, err
	}
	freq, err := fwimage.FreqCode(chip, s.FlashFreq)
	if err != nil {
		return nil, err
	}
	spec := fwimage.Spec{
		Chip: chip, FlashMode: mode, FlashSizeCode: size, FlashFreqCode: freq,
		Entry: uint32(s.Entry), HashAppended: s.HashAppended,
	}
	elf := sha256.New()
	for i, seg := range s.Segments {
		base := uint32(seg.Addr)
		if i == 0 && s.AppDesc != nil {
			base += fwimage.AppDescLen // the descriptor goes first
		}
		data, err := buildPieces(seg.Data, dir, base)
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
		elf.Write(data)
		spec.Segments = append(spec.Segments, fwimage.Segment{Addr: uint32(seg.Addr), Data: data})
	}
	if d := s.AppDesc; d != nil {
		desc := &fwimage.AppDesc{
			SecureVersion: d.SecureVersion, Version: d.Version, ProjectName: d.ProjectName,
			Time: d.Time, Date: d.Date, IDFVersion: d.IDFVer,
			MinEfuseBlkRevFull: d.MinEfuseBlkRevFull, MaxEfuseBlkRevFull: d.MaxEfuseBlkRevFull,
			MMUPageSize: d.MMUPageSize,
		}
		if d.AppELFSHA256 == "" {
			copy(desc.ELFSHA256[:], elf.Sum(nil))
		} else if h, err := hex.DecodeString(d.AppELFSHA256); err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("app_elf_sha256 %q: want 64 hex digits", d.AppELFSHA256)
		} else {
			copy(desc.ELFSHA256[:], h)
		}
		spec.AppDesc = desc
	}
	return fwimage.Build(spec)
}

// PartitionTableSpec describes a partition table (JSON), as ESP-IDF's
// partitions.csv does.
type PartitionTableSpec struct {
	MD5        *bool           `json:"md5,omitempty"` // add the MD5 row; default true, as ESP-IDF
	Partitions []PartitionSpec `json:"partitions"`
}

// PartitionSpec is one row. Type and SubType take ESP-IDF's names (app,
// data; factory, ota_0, nvs, phy, spiffs, littlefs, ...) or numbers.
type PartitionSpec struct {
	Label   string   `json:"label"`
	Type    string   `json:"type"`
	SubType string   `json:"subtype"`
	Offset  Number   `json:"offset"`
	Size    Number   `json:"size"`
	Flags   []string `json:"flags,omitempty"` // encrypted, readonly
}

// BuildPartitionTableSpec builds the table described by the spec file at
// path, as flashed (0xC00 bytes).
func BuildPartitionTableSpec(path string) ([]byte, error) {
	var s PartitionTableSpec
	if err := readSpec(path, &s); err != nil {
		return nil, err
	}
	t, err := s.Table()
	if err != nil {
		return nil, &Error{Kind: ErrBadManifest, File: path, Cause: err}
	}
	return t.Encode()
}

// Table checks the rows (no overlap, offsets 4 KiB aligned, apps 64 KiB
// aligned, as ESP-IDF's gen_esp32part requires) and returns the table.
func (s *PartitionTableSpec) Table() (*fwimage.PartitionTable, error) {
	t := &fwimage.PartitionTable{HasMD5: s.MD5 == nil || *s.MD5}
	var end uint64
	for i, ps := range s.Partitions {
		p := fwimage.Partition{Label: ps.Label, Offset: uint32(ps.Offset), Size: uint32(ps.Size)}
		var err error
		if p.Type, err = fwimage.ParsePartitionType(ps.Type); err != nil {
			return nil, fmt.Errorf("partition %q type: %w", ps.Label, err)
		}
		if p.SubType, err = fwimage.ParsePartitionSubType(p.Type, ps.SubType); err != nil {
			return nil, fmt.Errorf("partition %q subtype: %w", ps.Label, err)
		}
		for _, f := range ps.Flags {
			switch f {
			case "encrypted":
				p.Flags |= fwimage.PartFlagEncrypted
			case "readonly":
				p.Flags |= fwimage.PartFlagReadOnly
			default:
				return nil, fmt.Errorf("partition %q: unknown flag %q (encrypted, readonly)", ps.Label, f)
			}
		}
		align := uint32(0x1000)
		if p.Type == fwimage.PartTypeApp {
			align = 0x10000
		}
		switch {
		case p.Offset%align != 0:
			return nil, fmt.Errorf("partition %q: offset 0x%x is not a multiple of 0x%x", ps.Label, p.Offset, align)
		case p.Size == 0:
			return nil, fmt.Errorf("partition %q: size 0", ps.Label)
		case i > 0 && uint64(p.Offset) < end:
			return nil, fmt.Errorf("partition %q at 0x%x overlaps the one before (ends at 0x%x)", ps.Label, p.Offset, end)
		}
		end = uint64(p.Offset) + uint64(p.Size)
		t.Partitions = append(t.Partitions, p)
	}
	return t, nil
}

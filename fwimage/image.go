// Package fwimage reads and writes the firmware image format that the ESP
// ROMs and second-stage bootloaders load from SPI flash, and the partition
// table ESP-IDF keeps at 0x8000.
//
// Image layout (Espressif's "App Image Format" documentation; every
// multi-byte field is little-endian):
//
//	header      8 bytes: magic 0xE9, segment count, flash mode,
//	            flash size<<4 | flash frequency, entry address u32
//	ext header  16 bytes, ESP32 family only (see ExtHeader)
//	segments    load address u32, length u32, data
//	padding     zeros, so that the checksum is the last byte of a 16-byte block
//	checksum    0xEF XOR every segment data byte (headers excluded)
//	SHA-256     ESP32 family with hash_appended = 1: digest of all bytes before it
//
// The ESP8266 also has "V2" images (magic 0xEA), written by its SDK for the
// second-stage bootloader: a header, the irom0 segment, then a whole V1
// image, then a CRC-32 of everything before it.
package fwimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/mos-tool/mos/chips"
)

const (
	MagicV1      = 0xE9 // ESP8266 V1 and every ESP32-family image
	MagicV2      = 0xEA // ESP8266 V2 image
	ChecksumSeed = 0xEF // initial value of the XOR checksum

	// MaxSegments is the ESP-IDF bootloader's limit for ESP32-family images
	// (ESP_IMAGE_MAX_SEGMENTS).
	MaxSegments = 16
	// WPPinNone is the ext. header's WP pin value for "no WP pin on a GPIO".
	WPPinNone = 0xEE

	headerLen    = 8
	extHeaderLen = 16
	segHeaderLen = 8
)

// Errors a boot ROM or bootloader would report. Parse and Verify wrap them
// with details; test with errors.Is.
var (
	ErrBadMagic  = errors.New("fwimage: bad magic")
	ErrTruncated = errors.New("fwimage: truncated")
	ErrChecksum  = errors.New("fwimage: checksum mismatch")
	ErrHash      = errors.New("fwimage: SHA-256 digest mismatch")
	ErrSegment   = errors.New("fwimage: invalid segment")
	ErrChip      = errors.New("fwimage: image is for another chip")
)

// ChecksumError carries both checksum values, which boot ROMs print. It
// matches ErrChecksum.
type ChecksumError struct {
	Stored, Computed uint32 // a byte for the XOR checksum, a word for V2's CRC
	CRC              bool   // the ESP8266 V2 trailing CRC-32, not the XOR byte
}

func (e *ChecksumError) Error() string {
	if e.CRC {
		return fmt.Sprintf("fwimage: CRC-32 mismatch: stored 0x%08x, computed 0x%08x", e.Stored, e.Computed)
	}
	return fmt.Sprintf("fwimage: checksum mismatch: stored 0x%02x, computed 0x%02x", e.Stored, e.Computed)
}

func (e *ChecksumError) Is(target error) bool { return target == ErrChecksum }

// Segment is one block of data the loader copies to Addr.
type Segment struct {
	Addr uint32
	Data []byte // aliases the parsed buffer
	// FileOffset is where Data starts in the image (after the segment's
	// 8-byte header). Build ignores it.
	FileOffset int
}

// ExtHeader holds the ESP32-family extended header (bytes 8-23) other than
// the chip id and the hash flag, which Image keeps as fields of their own.
type ExtHeader struct {
	WPPin      uint8    // byte 8: GPIO of the flash WP pin, WPPinNone if not on a GPIO
	SPIDrive   [3]uint8 // bytes 9-11: drive strength nibbles of the SPI pins
	MinRev     uint8    // byte 14: legacy minimum chip revision (major only)
	MinRevFull uint16   // bytes 15-16: minimum chip revision, major*100 + minor
	MaxRevFull uint16   // bytes 17-18: maximum chip revision, major*100 + minor
}

// DefaultExtHeader is what esptool writes without options: no WP pin, no
// drive strength, any revision.
func DefaultExtHeader() ExtHeader {
	return ExtHeader{WPPin: WPPinNone, MaxRevFull: 0xFFFF}
}

// V2Info describes the ESP8266 V2 wrapping.
type V2Info struct {
	// IROM is the irom0 segment that precedes the inner V1 image. It is
	// stored with address 0 (its data is mapped from flash, not copied)
	// and the XOR checksum does not cover it.
	IROM Segment
	// Header2 is the offset of the inner V1 header.
	Header2 int
	// CRC32 is the trailing checksum of the SDK's bootloader, over every
	// byte before it; HasCRC is false when it is missing (data ends early
	// or reads as erased flash).
	CRC32  uint32
	HasCRC bool
}

// Image is a parsed firmware image.
type Image struct {
	Magic  uint8
	ChipID int // ext. header chip id; -1 for ESP8266 images

	// Header byte 2 and the two nibbles of byte 3 (see codes.go).
	FlashMode, FlashSizeCode, FlashFreqCode uint8

	Entry    uint32
	Ext      ExtHeader // ESP32 family only
	Segments []Segment // V2: the inner image's segments
	Checksum uint8     // as stored

	HashAppended bool
	SHA256       [32]byte // as stored, when HashAppended

	// Length is the image size in bytes including padding, checksum,
	// digest and (V2) CRC; data past it (e.g. erased flash) is not part of
	// the image.
	Length int

	AppDesc *AppDesc // ESP32-family app images only
	V2      *V2Info  // ESP8266 V2 images only

	raw []byte // data[:Length]
}

// IsESP8266 reports whether this is an ESP8266 (V1 or V2) image.
func (img *Image) IsESP8266() bool { return img.ChipID < 0 }

// Bytes returns the image's bytes as parsed (not a copy).
func (img *Image) Bytes() []byte { return img.raw }

// Parse reads an image of any supported format. The 0xE9 magic is shared by
// the ESP8266 and the ESP32 family: Parse tells them apart by what follows
// the header (an ESP8266 segment load address, or a plausible extended
// header). When the chip is known, ParseFor is exact.
//
// Parse checks the structure (magic, that every segment and the checksum
// fit in data); Verify checks the checksum and digest, so that a corrupt
// image can still be described. Segment data aliases data.
func Parse(data []byte) (*Image, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty image", ErrTruncated)
	}
	switch data[0] {
	case MagicV1:
		return parseV1(data, !looksESP8266(data))
	case MagicV2:
		return parseV2(data)
	}
	return nil, fmt.Errorf("%w: 0x%02x", ErrBadMagic, data[0])
}

// ParseFor reads an image in the format chip c loads. It does not check the
// image's chip id: see CheckChip.
func ParseFor(c *chips.Chip, data []byte) (*Image, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty image", ErrTruncated)
	}
	switch {
	case data[0] == MagicV1:
		return parseV1(data, !c.IsESP8266())
	case data[0] == MagicV2 && c.IsESP8266():
		return parseV2(data)
	}
	return nil, fmt.Errorf("%w: 0x%02x", ErrBadMagic, data[0])
}

// looksESP8266 guesses the family of a 0xE9 image from bytes 8-11: on the
// ESP8266 they are the first segment's load address (DRAM 0x3FFE8000...,
// IRAM 0x40100000..., flash 0x40200000...), on the ESP32 family the WP pin
// (0xEE or a GPIO number) and drive strengths, which never look like that.
// An image too short for an extended header is taken as ESP8266, as is one
// whose WP pin is neither, whose reserved ext. header bytes are not zero or
// whose hash flag is not 0 or 1 (esptool writes 0 or 1).
func looksESP8266(data []byte) bool {
	if len(data) < headerLen+extHeaderLen {
		return true
	}
	if a := le32(data[8:]); a >= 0x3FF00000 && a < 0x40300000 {
		return true
	}
	wp := data[8]
	return wp != WPPinNone && wp >= 64 || // not "none", not a GPIO number
		!bytes.Equal(data[19:23], []byte{0, 0, 0, 0}) || data[23] > 1
}

func parseV1(data []byte, esp32 bool) (*Image, error) {
	if len(data) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, len(data), headerLen)
	}
	img := &Image{ChipID: -1}
	img.readHeader(data)
	pos := headerLen
	if esp32 {
		if len(data) < headerLen+extHeaderLen {
			return nil, fmt.Errorf("%w: %d bytes, extended header needs %d", ErrTruncated, len(data), headerLen+extHeaderLen)
		}
		h := data[headerLen:]
		img.Ext = ExtHeader{
			WPPin:      h[0],
			SPIDrive:   [3]uint8{h[1], h[2], h[3]},
			MinRev:     h[6],
			MinRevFull: le16(h[7:]),
			MaxRevFull: le16(h[9:]),
		}
		img.ChipID = int(le16(h[4:]))
		img.HashAppended = h[15] != 0 // the bootloader tests it as a bool
		pos += extHeaderLen
	}
	segs, pos, err := readSegments(data, pos, int(data[1]))
	if err != nil {
		return nil, err
	}
	img.Segments = segs
	if err := img.readTrailer(data, pos); err != nil {
		return nil, err
	}
	if esp32 && len(segs) > 0 {
		// Only app images have one; a bootloader's first segment starts
		// with something else, which is not an error.
		img.AppDesc, _ = ParseAppDesc(segs[0].Data)
	}
	return img, nil
}

func parseV2(data []byte) (*Image, error) {
	if len(data) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, len(data), headerLen)
	}
	img := &Image{ChipID: -1}
	img.readHeader(data) // the SDK bootloader reads flash params here
	irom, pos, err := readSegments(data, headerLen, 1)
	if err != nil {
		return nil, err
	}
	v2 := &V2Info{IROM: irom[0], Header2: pos}
	if len(data) < pos+headerLen {
		return nil, fmt.Errorf("%w: inner V1 header at 0x%x", ErrTruncated, pos)
	}
	if data[pos] != MagicV1 {
		return nil, fmt.Errorf("%w: inner V1 header at 0x%x has 0x%02x", ErrBadMagic, pos, data[pos])
	}
	img.Entry = le32(data[pos+4:])
	segs, pos, err := readSegments(data, pos+headerLen, int(data[pos+1]))
	if err != nil {
		return nil, err
	}
	img.Segments = segs
	img.V2 = v2
	if err := img.readTrailer(data, pos); err != nil {
		return nil, err
	}
	// The CRC is a transformed CRC-32 that can never be 0xFFFFFFFF, so
	// erased flash after the image reads as "no CRC".
	if end := img.Length; len(data) >= end+4 && le32(data[end:]) != 0xFFFFFFFF {
		v2.CRC32, v2.HasCRC = le32(data[end:]), true
		img.Length += 4
		img.raw = data[:img.Length]
	}
	return img, nil
}

func (img *Image) readHeader(data []byte) {
	img.Magic = data[0]
	img.FlashMode = data[2]
	img.FlashSizeCode = data[3] >> 4
	img.FlashFreqCode = data[3] & 0x0F
	img.Entry = le32(data[4:])
}

// readSegments reads n segments from pos. It checks every length against
// the data left before slicing, so nothing is allocated for lengths that
// the data cannot back.
func readSegments(data []byte, pos, n int) ([]Segment, int, error) {
	segs := make([]Segment, 0, n) // n <= 255
	for i := range n {
		if len(data)-pos < segHeaderLen {
			return nil, 0, fmt.Errorf("%w: segment %d header at 0x%x", ErrTruncated, i, pos)
		}
		addr, size := le32(data[pos:]), le32(data[pos+4:])
		pos += segHeaderLen
		if uint64(size) > uint64(len(data)-pos) {
			return nil, 0, fmt.Errorf("%w: segment %d at 0x%x claims %d bytes, %d left", ErrTruncated, i, pos, size, len(data)-pos)
		}
		end := pos + int(size)
		segs = append(segs, Segment{Addr: addr, Data: data[pos:end:end], FileOffset: pos})
		pos = end
	}
	return segs, pos, nil
}

// checksumPos is where the checksum byte goes after content ending at pos:
// the last byte of the 16-byte block, so the image up to it is a multiple
// of 16 bytes long.
func checksumPos(pos int) int { return pos | 15 }

func (img *Image) readTrailer(data []byte, pos int) error {
	at := checksumPos(pos)
	if at >= len(data) {
		return fmt.Errorf("%w: checksum at 0x%x, image has %d bytes", ErrTruncated, at, len(data))
	}
	img.Checksum = data[at]
	end := at + 1
	if img.HashAppended {
		if len(data)-end < sha256.Size {
			return fmt.Errorf("%w: SHA-256 at 0x%x, image has %d bytes", ErrTruncated, end, len(data))
		}
		copy(img.SHA256[:], data[end:])
		end += sha256.Size
	}
	img.Length = end
	img.raw = data[:end]
	return nil
}

// checksum is the XOR checksum of the segments' data.
func checksum(segs []Segment) uint8 {
	sum := uint8(ChecksumSeed)
	for _, s := range segs {
		for _, b := range s.Data {
			sum ^= b
		}
	}
	return sum
}

// v2CRC is the ESP8266 SDK bootloader's CRC: the standard CRC-32 (IEEE),
// inverted when its top bit is set, else plus one.
func v2CRC(data []byte) uint32 {
	c := crc32.ChecksumIEEE(data)
	if c&0x80000000 != 0 {
		return ^c
	}
	return c + 1
}

// Verify checks what a loader checks before running the image: magic,
// segment count and lengths (ESP32 family: at most 16 segments, lengths
// multiples of 4), the XOR checksum, the appended SHA-256 and the V2 CRC.
// It checks the image as parsed; the checksum follows Segments.
func (img *Image) Verify() error {
	if img.Magic != MagicV1 && img.Magic != MagicV2 {
		return fmt.Errorf("%w: 0x%02x", ErrBadMagic, img.Magic)
	}
	if !img.IsESP8266() {
		if len(img.Segments) > MaxSegments {
			return fmt.Errorf("%w: %d segments, at most %d", ErrSegment, len(img.Segments), MaxSegments)
		}
		for i, s := range img.Segments {
			if len(s.Data)%4 != 0 {
				return fmt.Errorf("%w: segment %d length %d is not a multiple of 4", ErrSegment, i, len(s.Data))
			}
		}
	}
	if sum := checksum(img.Segments); sum != img.Checksum {
		return &ChecksumError{Stored: uint32(img.Checksum), Computed: uint32(sum)}
	}
	if img.HashAppended {
		if len(img.raw) < sha256.Size {
			return fmt.Errorf("%w: no image bytes to hash", ErrHash)
		}
		if sha256.Sum256(img.raw[:len(img.raw)-sha256.Size]) != img.SHA256 {
			return ErrHash
		}
	}
	if img.V2 != nil && img.V2.HasCRC {
		if c := v2CRC(img.raw[:len(img.raw)-4]); c != img.V2.CRC32 {
			return &ChecksumError{Stored: img.V2.CRC32, Computed: c, CRC: true}
		}
	}
	return nil
}

// CheckChip reports ErrChip when the image is not for chip c (the ESP32
// family compares the ext. header chip id).
func (img *Image) CheckChip(c *chips.Chip) error {
	if img.ChipID != c.ImageChipID {
		if img.IsESP8266() {
			return fmt.Errorf("%w: ESP8266 image, chip is %s", ErrChip, c.Name)
		}
		return fmt.Errorf("%w: chip id %d, %s has %d", ErrChip, img.ChipID, c.Name, c.ImageChipID)
	}
	return nil
}

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

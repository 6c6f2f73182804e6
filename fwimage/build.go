package fwimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mos-tool/mos/chips"
)

// Spec describes an image for Build.
type Spec struct {
	Chip *chips.Chip
	// Header byte 2 and the nibbles of byte 3; see ModeCode, SizeCode and
	// FreqCode.
	FlashMode, FlashSizeCode, FlashFreqCode uint8

	Entry uint32
	// Segments in load order. Build pads each one with zeros to a multiple
	// of 4 bytes, as loaders copy words. FileOffset is ignored.
	Segments []Segment

	// ESP32 family only.
	Ext *ExtHeader // nil: DefaultExtHeader
	// AppDesc, when set, is encoded at the start of the first segment
	// (file offset 0x20), ahead of Segments[0].Data; Segments[0].Addr is
	// then the descriptor's load address.
	AppDesc      *AppDesc
	HashAppended bool
}

// Build encodes an image (ESP8266 V1 or ESP32 family, by s.Chip).
func Build(s Spec) ([]byte, error) {
	c := s.Chip
	if c == nil {
		return nil, errors.New("fwimage: no chip")
	}
	if s.FlashSizeCode > 0xF || s.FlashFreqCode > 0xF {
		return nil, fmt.Errorf("fwimage: flash size code 0x%x / freq code 0x%x do not fit a nibble", s.FlashSizeCode, s.FlashFreqCode)
	}
	esp32 := !c.IsESP8266()
	if !esp32 && (s.Ext != nil || s.AppDesc != nil || s.HashAppended) {
		return nil, errors.New("fwimage: ESP8266 images have no extended header, app descriptor or SHA-256")
	}
	segs := s.Segments
	if s.AppDesc != nil {
		if len(segs) == 0 {
			return nil, errors.New("fwimage: an app descriptor needs a first segment")
		}
		desc, err := s.AppDesc.Encode()
		if err != nil {
			return nil, err
		}
		segs = append([]Segment{{Addr: segs[0].Addr, Data: append(desc, segs[0].Data...)}}, segs[1:]...)
	}
	limit := 255 // the header's count byte
	if esp32 {
		limit = MaxSegments
	}
	if len(segs) > limit {
		return nil, fmt.Errorf("fwimage: %d segments, %s images hold at most %d", len(segs), c.Name, limit)
	}

	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{MagicV1, byte(len(segs)), s.FlashMode, s.FlashSizeCode<<4 | s.FlashFreqCode})
	b.Write(le.AppendUint32(nil, s.Entry))
	if esp32 {
		ext := DefaultExtHeader()
		if s.Ext != nil {
			ext = *s.Ext
		}
		var h [extHeaderLen]byte
		h[0] = ext.WPPin
		copy(h[1:4], ext.SPIDrive[:])
		le.PutUint16(h[4:], uint16(c.ImageChipID))
		h[6] = ext.MinRev
		le.PutUint16(h[7:], ext.MinRevFull)
		le.PutUint16(h[9:], ext.MaxRevFull)
		if s.HashAppended {
			h[15] = 1
		}
		b.Write(h[:])
	}
	sum := uint8(ChecksumSeed)
	for _, seg := range segs {
		pad := (4 - len(seg.Data)%4) % 4
		b.Write(le.AppendUint32(nil, seg.Addr))
		b.Write(le.AppendUint32(nil, uint32(len(seg.Data)+pad)))
		b.Write(seg.Data)
		b.Write(make([]byte, pad)) // zeros leave the checksum unchanged
		for _, x := range seg.Data {
			sum ^= x
		}
	}
	b.Write(make([]byte, checksumPos(b.Len())-b.Len()))
	b.WriteByte(sum)
	out := b.Bytes()
	if s.HashAppended {
		h := sha256.Sum256(out)
		out = append(out, h[:]...)
	}
	return out, nil
}

// SetFlashParams patches header bytes 2-3 (flash mode, size and frequency
// codes) of the image img in place, as flashers do to a bootloader before
// writing it, and keeps the image valid: it recomputes the appended SHA-256
// (ESP32 family) or the trailing CRC (ESP8266 V2). A V2 image's inner
// header is left alone, as its loader reads the outer one.
//
// When the stored digest or CRC does not match before patching, the image
// is left unchanged and the error matches ErrHash or ErrChecksum: the
// trailing bytes are not a plain digest (or the image is already corrupt)
// and recomputing them would hide that.
func SetFlashParams(img []byte, mode, sizeCode, freqCode uint8) error {
	if sizeCode > 0xF || freqCode > 0xF {
		return fmt.Errorf("fwimage: flash size code 0x%x / freq code 0x%x do not fit a nibble", sizeCode, freqCode)
	}
	im, err := Parse(img)
	if err != nil {
		return err
	}
	hashEnd := 0 // end of the bytes a trailer covers
	switch {
	case im.HashAppended:
		hashEnd = im.Length - sha256.Size
		if sha256.Sum256(img[:hashEnd]) != im.SHA256 {
			return fmt.Errorf("%w: stored digest was already wrong, not patching", ErrHash)
		}
	case im.V2 != nil && im.V2.HasCRC:
		hashEnd = im.Length - 4
		if c := v2CRC(img[:hashEnd]); c != im.V2.CRC32 {
			return &ChecksumError{Stored: im.V2.CRC32, Computed: c, CRC: true}
		}
	}
	img[2] = mode
	img[3] = sizeCode<<4 | freqCode
	switch {
	case im.HashAppended:
		h := sha256.Sum256(img[:hashEnd])
		copy(img[hashEnd:], h[:])
	case hashEnd > 0:
		binary.LittleEndian.PutUint32(img[hashEnd:], v2CRC(img[:hashEnd]))
	}
	return nil
}

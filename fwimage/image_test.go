package fwimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/mos-tool/mos/chips"
)

func chip(t testing.TB, key string) *chips.Chip {
	t.Helper()
	c, err := chips.ByKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testDesc() *AppDesc {
	d := &AppDesc{
		SecureVersion:      3,
		Version:            "v1.2.3-exactly-thirty-two-bytes!", // fills the field, no NUL
		ProjectName:        "blink",
		Time:               "12:34:56",
		Date:               "Jan  2 2025",
		IDFVersion:         "v5.3.1",
		MinEfuseBlkRevFull: 0,
		MaxEfuseBlkRevFull: 199,
		MMUPageSize:        16,
	}
	for i := range d.ELFSHA256 {
		d.ELFSHA256[i] = byte(i)
	}
	return d
}

// testSpec is a small image for chip c: an odd-sized segment (padded by
// Build), an empty one and a larger one.
func testSpec(c *chips.Chip, hash bool, desc *AppDesc) Spec {
	return Spec{
		Chip:      c,
		FlashMode: 2, FlashSizeCode: 3, FlashFreqCode: 0xF,
		Entry: 0x40080000 + uint32(c.ImageChipID),
		Segments: []Segment{
			{Addr: 0x3F400020, Data: []byte{1, 2, 3}},
			{Addr: 0x3FFB0000},
			{Addr: 0x40080000, Data: bytes.Repeat([]byte{0xA5, 0x5A, 0x01}, 100)},
		},
		AppDesc:      desc,
		HashAppended: hash,
	}
}

func mustBuild(t testing.TB, s Spec) []byte {
	t.Helper()
	b, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for _, c := range chips.All() {
		for _, hash := range []bool{false, true} {
			for _, desc := range []*AppDesc{nil, testDesc()} {
				if c.IsESP8266() && (hash || desc != nil) {
					continue
				}
				s := testSpec(c, hash, desc)
				data := mustBuild(t, s)
				for name, parse := range map[string]func([]byte) (*Image, error){
					"Parse":    Parse,
					"ParseFor": func(b []byte) (*Image, error) { return ParseFor(c, b) },
				} {
					img, err := parse(data)
					if err != nil {
						t.Fatalf("%s %s hash=%v: %v", c.Key, name, hash, err)
					}
					checkRoundTrip(t, c, s, data, img)
				}
			}
		}
	}
}

func checkRoundTrip(t *testing.T, c *chips.Chip, s Spec, data []byte, img *Image) {
	t.Helper()
	if err := img.Verify(); err != nil {
		t.Fatalf("%s: Verify: %v", c.Key, err)
	}
	if err := img.CheckChip(c); err != nil {
		t.Fatalf("%s: CheckChip: %v", c.Key, err)
	}
	if img.Magic != MagicV1 || img.ChipID != c.ImageChipID || img.Entry != s.Entry ||
		img.FlashMode != s.FlashMode || img.FlashSizeCode != s.FlashSizeCode || img.FlashFreqCode != s.FlashFreqCode {
		t.Fatalf("%s: header %+v", c.Key, img)
	}
	if img.Length != len(data) || img.HashAppended != s.HashAppended {
		t.Fatalf("%s: length %d of %d, hash %v", c.Key, img.Length, len(data), img.HashAppended)
	}
	body := len(data)
	if s.HashAppended {
		body -= sha256.Size
		if img.SHA256 != sha256.Sum256(data[:body]) {
			t.Fatalf("%s: digest", c.Key)
		}
	}
	if body%16 != 0 || data[body-1] != img.Checksum {
		t.Fatalf("%s: checksum byte must end a 16-byte block (body %d)", c.Key, body)
	}
	if len(img.Segments) != len(s.Segments) {
		t.Fatalf("%s: %d segments", c.Key, len(img.Segments))
	}
	for i, seg := range img.Segments {
		want := s.Segments[i].Data
		if i == 0 && s.AppDesc != nil {
			if seg.FileOffset != AppDescOffset {
				t.Fatalf("%s: first segment at 0x%x", c.Key, seg.FileOffset)
			}
			want = append(must(s.AppDesc.Encode()), want...)
		}
		if seg.Addr != s.Segments[i].Addr || len(seg.Data)%4 != 0 ||
			!bytes.Equal(seg.Data[:len(want)], want) || len(seg.Data)-len(want) >= 4 {
			t.Fatalf("%s: segment %d = %x at 0x%x", c.Key, i, seg.Data, seg.Addr)
		}
		if !bytes.Equal(data[seg.FileOffset:seg.FileOffset+len(seg.Data)], seg.Data) {
			t.Fatalf("%s: segment %d FileOffset", c.Key, i)
		}
	}
	if c.IsESP8266() {
		if img.Ext != (ExtHeader{}) {
			t.Fatalf("esp8266 ext header %+v", img.Ext)
		}
	} else if img.Ext != DefaultExtHeader() {
		t.Fatalf("%s: ext header %+v", c.Key, img.Ext)
	}
	switch {
	case s.AppDesc == nil && img.AppDesc != nil:
		t.Fatalf("%s: unexpected app descriptor", c.Key)
	case s.AppDesc != nil && (img.AppDesc == nil || *img.AppDesc != *s.AppDesc):
		t.Fatalf("%s: app descriptor %+v", c.Key, img.AppDesc)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// The exact bytes of a minimal ESP8266 image, written out by hand.
func TestESP8266Golden(t *testing.T) {
	got := mustBuild(t, Spec{
		Chip: chip(t, "esp8266"), FlashMode: 0, FlashSizeCode: 4, FlashFreqCode: 0,
		Entry:    0x40100004,
		Segments: []Segment{{Addr: 0x40100000, Data: []byte{1, 2, 3, 4}}},
	})
	want := []byte{
		0xE9, 1, 0, 0x40, 0x04, 0x00, 0x10, 0x40, // header
		0x00, 0x00, 0x10, 0x40, 4, 0, 0, 0, // segment header
		1, 2, 3, 4, // data
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
		0xEF ^ 1 ^ 2 ^ 3 ^ 4, // checksum, at offset 31
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
	img, err := Parse(got)
	if err != nil || !img.IsESP8266() || img.Verify() != nil {
		t.Fatalf("%+v, %v", img, err)
	}
}

// The extended header's fields land at the documented offsets.
func TestExtHeaderLayout(t *testing.T) {
	s := testSpec(chip(t, "esp32c3"), true, nil)
	s.Ext = &ExtHeader{WPPin: 7, SPIDrive: [3]uint8{0x12, 0x34, 0x56}, MinRev: 3, MinRevFull: 101, MaxRevFull: 199}
	data := mustBuild(t, s)
	want := []byte{7, 0x12, 0x34, 0x56, 5, 0, 3, 101, 0, 199, 0, 0, 0, 0, 0, 1}
	if !bytes.Equal(data[8:24], want) {
		t.Fatalf("ext header %x, want %x", data[8:24], want)
	}
	img := must(Parse(data))
	if img.Ext != *s.Ext || img.ChipID != 5 {
		t.Fatalf("%+v", img.Ext)
	}
}

func TestBuildErrors(t *testing.T) {
	esp8266, esp32 := chip(t, "esp8266"), chip(t, "esp32")
	many := make([]Segment, MaxSegments+1)
	long := testDesc()
	long.ProjectName = string(bytes.Repeat([]byte{'x'}, 33))
	for name, s := range map[string]Spec{
		"no chip":            {},
		"8266 hash":          {Chip: esp8266, HashAppended: true},
		"8266 ext":           {Chip: esp8266, Ext: &ExtHeader{}},
		"8266 desc":          {Chip: esp8266, AppDesc: testDesc()},
		"desc no segment":    {Chip: esp32, AppDesc: testDesc()},
		"desc long name":     {Chip: esp32, AppDesc: long, Segments: []Segment{{}}},
		"size nibble":        {Chip: esp32, FlashSizeCode: 0x10},
		"freq nibble":        {Chip: esp32, FlashFreqCode: 0x10},
		"too many segments":  {Chip: esp32, Segments: many},
		"8266 segment count": {Chip: esp8266, Segments: make([]Segment, 256)},
	} {
		if _, err := Build(s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCorruption(t *testing.T) {
	esp32, esp8266 := chip(t, "esp32s3"), chip(t, "esp8266")
	hashed := mustBuild(t, testSpec(esp32, true, testDesc()))
	plain32 := mustBuild(t, testSpec(esp32, false, nil))
	plain := mustBuild(t, testSpec(esp8266, false, nil))
	img := must(Parse(hashed))
	sumAt := img.Length - sha256.Size - 1
	seg0 := img.Segments[0].FileOffset

	for _, tc := range []struct {
		name    string
		base    []byte
		mutate  func([]byte) []byte
		parse   error // from Parse
		verify  error // from Verify, when Parse succeeds
		chipErr bool
	}{
		{name: "magic", base: hashed, mutate: set(0, 0xE8), parse: ErrBadMagic},
		{name: "8266 magic", base: plain, mutate: set(0, 0x00), parse: ErrBadMagic},
		{name: "empty", base: hashed, mutate: cut(0), parse: ErrTruncated},
		{name: "short header", base: hashed, mutate: cut(5), parse: ErrTruncated},
		{name: "short ext header", base: hashed, mutate: cut(20), parse: ErrTruncated},
		{name: "segment count", base: hashed, mutate: set(1, 200), parse: ErrTruncated},
		{name: "segment length", base: hashed, mutate: put32(seg0-4, 0xFFFFFFF0), parse: ErrTruncated},
		{name: "segment cut", base: hashed, mutate: cut(seg0 + 10), parse: ErrTruncated},
		{name: "no checksum", base: hashed, mutate: cut(sumAt), parse: ErrTruncated},
		{name: "no digest", base: hashed, mutate: cut(len(hashed) - 1), parse: ErrTruncated},
		{name: "8266 no checksum", base: plain, mutate: cut(len(plain) - 1), parse: ErrTruncated},
		{name: "data byte", base: hashed, mutate: flip(seg0 + 40), verify: ErrChecksum},
		{name: "checksum", base: hashed, mutate: flip(sumAt), verify: ErrChecksum},
		{name: "8266 data byte", base: plain, mutate: flip(len(plain) - 20), verify: ErrChecksum},
		{name: "8266 checksum", base: plain, mutate: flip(len(plain) - 1), verify: ErrChecksum},
		{name: "digest", base: hashed, mutate: flip(len(hashed) - 1), verify: ErrHash},
		{name: "header byte under digest", base: hashed, mutate: flip(4), verify: ErrHash},
		{name: "padding under digest", base: hashed, mutate: flip(sumAt - 1), verify: ErrHash},
		{name: "segment length not word", base: hashed, mutate: unalign, verify: ErrSegment},
		{name: "chip id", base: plain32, mutate: set(12, 5), chipErr: true},
	} {
		data := tc.mutate(bytes.Clone(tc.base))
		img, err := Parse(data)
		if tc.parse != nil {
			if !errors.Is(err, tc.parse) {
				t.Errorf("%s: Parse error %v, want %v", tc.name, err, tc.parse)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Parse: %v", tc.name, err)
			continue
		}
		if err := img.Verify(); !errors.Is(err, tc.verify) || (err == nil) != (tc.verify == nil) {
			t.Errorf("%s: Verify error %v, want %v", tc.name, err, tc.verify)
		}
		c := esp32
		if img.IsESP8266() {
			c = esp8266
		}
		if err := img.CheckChip(c); (err != nil) != tc.chipErr || err != nil && !errors.Is(err, ErrChip) {
			t.Errorf("%s: CheckChip(%s) on chip id %d: %v", tc.name, c.Key, img.ChipID, err)
		}
	}
}

func set(i int, v byte) func([]byte) []byte {
	return func(b []byte) []byte { b[i] = v; return b }
}
func flip(i int) func([]byte) []byte {
	return func(b []byte) []byte { b[i] ^= 0x01; return b }
}
func cut(n int) func([]byte) []byte {
	return func(b []byte) []byte { return b[:n] }
}
func put32(i int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[i:], v); return b }
}

// unalign makes a one-segment image whose segment is 3 bytes long, with a
// correct checksum and digest: only the length rule is broken.
func unalign(_ []byte) []byte {
	b := []byte{0xE9, 1, 2, 0x20, 0, 0, 0x08, 0x40, 0xEE, 0, 0, 0, 9, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0, 1}
	b = binary.LittleEndian.AppendUint32(b, 0x3FC88000)
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = append(b, 1, 2, 3)
	b = append(b, make([]byte, checksumPos(len(b))-len(b))...)
	b = append(b, ChecksumSeed^1^2^3)
	h := sha256.Sum256(b)
	return append(b, h[:]...)
}

func TestChecksumError(t *testing.T) {
	data := mustBuild(t, testSpec(chip(t, "esp32"), false, nil))
	want := data[len(data)-1]
	data[len(data)-1] ^= 0xFF
	var ce *ChecksumError
	if err := must(Parse(data)).Verify(); !errors.As(err, &ce) || ce.Computed != uint32(want) || ce.Stored != uint32(want^0xFF) || ce.CRC {
		t.Fatalf("%v", err)
	}
}

// Trailing data (the rest of a flash read) is not part of the image.
func TestTrailingData(t *testing.T) {
	data := mustBuild(t, testSpec(chip(t, "esp32c6"), true, nil))
	n := len(data)
	data = append(data, bytes.Repeat([]byte{0xFF}, 4096)...)
	img := must(Parse(data))
	if img.Length != n || len(img.Bytes()) != n || img.Verify() != nil {
		t.Fatalf("length %d, want %d", img.Length, n)
	}
}

func TestParseForWrongFamily(t *testing.T) {
	v2 := buildV2(t)
	if _, err := ParseFor(chip(t, "esp32"), v2); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("V2 image for an ESP32: %v", err)
	}
}

// buildV2 assembles an ESP8266 V2 image: outer header, irom0 segment (16
// bytes, so the inner V1 image stays 16-byte aligned), inner V1 image,
// CRC.
func buildV2(t testing.TB) []byte {
	b := []byte{MagicV2, 4, 2, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0}
	b = append(b, bytes.Repeat([]byte{0x77}, 16)...)
	b = append(b, mustBuild(t, Spec{
		Chip: chip(t, "esp8266"), FlashMode: 2, FlashSizeCode: 4, Entry: 0x40100004,
		Segments: []Segment{{Addr: 0x40100000, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}}, {Addr: 0x3FFE8000, Data: []byte{9, 9, 9, 9}}},
	})...)
	return binary.LittleEndian.AppendUint32(b, v2CRC(b))
}

func TestV2(t *testing.T) {
	data := buildV2(t)
	img, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if img.Magic != MagicV2 || img.V2 == nil || !img.V2.HasCRC || img.V2.Header2 != 32 ||
		len(img.V2.IROM.Data) != 16 || len(img.Segments) != 2 || img.Entry != 0x40100004 ||
		img.Length != len(data) || img.ChipID != -1 || img.FlashSizeCode != 4 {
		t.Fatalf("%+v %+v", img, img.V2)
	}
	if err := img.Verify(); err != nil {
		t.Fatal(err)
	}
	if err := img.CheckChip(chip(t, "esp8266")); err != nil {
		t.Fatal(err)
	}

	// Erased flash after the image: no CRC.
	noCRC := append(bytes.Clone(data[:len(data)-4]), 0xFF, 0xFF, 0xFF, 0xFF)
	if img := must(Parse(noCRC)); img.V2.HasCRC || img.Length != len(data)-4 || img.Verify() != nil {
		t.Fatalf("%+v", img.V2)
	}

	bad := bytes.Clone(data)
	bad[20] ^= 1 // irom data: only the CRC covers it
	var ce *ChecksumError
	if err := must(Parse(bad)).Verify(); !errors.As(err, &ce) || !ce.CRC || !errors.Is(err, ErrChecksum) {
		t.Fatalf("%v", err)
	}

	bad = bytes.Clone(data)
	bad[32] = 0xE8 // inner magic
	if _, err := Parse(bad); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("%v", err)
	}
	if _, err := Parse(data[:40]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("%v", err)
	}
}

func TestSetFlashParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"esp32 hashed", mustBuild(t, testSpec(chip(t, "esp32"), true, nil))},
		{"esp32c3 plain", mustBuild(t, testSpec(chip(t, "esp32c3"), false, nil))},
		{"esp8266", mustBuild(t, testSpec(chip(t, "esp8266"), false, nil))},
		{"esp8266 v2", buildV2(t)},
	} {
		data := bytes.Clone(tc.data)
		if err := SetFlashParams(data, 3, 4, 0xF); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		img := must(Parse(data))
		if err := img.Verify(); err != nil {
			t.Fatalf("%s: patched image: %v", tc.name, err)
		}
		if img.FlashMode != 3 || img.FlashSizeCode != 4 || img.FlashFreqCode != 0xF || data[3] != 0x4F {
			t.Fatalf("%s: %x", tc.name, data[:4])
		}
		// Only bytes 2-3 and the trailer changed.
		n := img.Length
		if img.HashAppended {
			n -= sha256.Size
		} else if img.V2 != nil {
			n -= 4
		}
		if !bytes.Equal(data[4:n], tc.data[4:n]) || !bytes.Equal(data[:2], tc.data[:2]) {
			t.Fatalf("%s: more than the header changed", tc.name)
		}
	}

	// A wrong digest is reported, not silently replaced.
	data := mustBuild(t, testSpec(chip(t, "esp32s2"), true, nil))
	data[len(data)-1] ^= 1
	orig := bytes.Clone(data)
	if err := SetFlashParams(data, 0, 0, 0); !errors.Is(err, ErrHash) || !bytes.Equal(data, orig) {
		t.Fatalf("%v", err)
	}
	if err := SetFlashParams(data, 0, 0x10, 0); err == nil {
		t.Fatal("size code 0x10 accepted")
	}
	if err := SetFlashParams([]byte{0x00, 1, 2, 3}, 0, 0, 0); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("%v", err)
	}
}

func TestAppDesc(t *testing.T) {
	d := testDesc()
	b, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != AppDescLen || binary.LittleEndian.Uint32(b) != AppDescMagic {
		t.Fatalf("%x", b[:8])
	}
	// Spot-check the documented offsets.
	if string(b[48:53]) != "blink" || b[53] != 0 || string(b[112:118]) != "v5.3.1" || b[144] != 0 || b[175] != 31 ||
		binary.LittleEndian.Uint16(b[178:]) != 199 || b[180] != 16 {
		t.Fatalf("layout: %x", b)
	}
	got, err := ParseAppDesc(b)
	if err != nil || *got != *d {
		t.Fatalf("%+v, %v", got, err)
	}
	if _, err := ParseAppDesc(b[:255]); !errors.Is(err, ErrTruncated) {
		t.Fatal(err)
	}
	b[0] ^= 1
	if _, err := ParseAppDesc(b); !errors.Is(err, ErrBadMagic) {
		t.Fatal(err)
	}
	d.Date = "a\x00b"
	if _, err := d.Encode(); err == nil {
		t.Fatal("NUL in a string accepted")
	}
}

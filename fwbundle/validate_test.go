package fwbundle

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	esp32Img, c3Img, esp8266Img := testImage(t, "esp32"), testImage(t, "esp32c3"), testImage(t, "esp8266")
	blob := func(n int) []byte { return make([]byte, n) }
	part := func(name string, addr uint32, data []byte) Part {
		return Part{Name: name, Addr: addr, Data: data, Flash: true}
	}
	typed := func(p Part, typ string) Part { p.Type = typ; return p }
	noFlash := func(p Part) Part { p.Flash = false; return p }
	const mib = 1 << 20
	tests := []struct {
		name      string
		platform  string
		parts     []Part
		chip      string
		flashSize int
		kind      error // nil: valid
	}{
		{"ok", "esp32", []Part{part("boot", 0x1000, esp32Img), part("app", 0x10000, esp32Img)}, "esp32", 4 * mib, nil},
		{"ok without platform", "", []Part{part("a", 0x0, c3Img)}, "esp32c3", 4 * mib, nil},
		{"unknown flash size", "", []Part{part("a", 0x7FFFF000, blob(8192))}, "esp32", 0, nil},
		{"ends at the flash end", "", []Part{part("a", 4*mib-4096, blob(4096))}, "esp32", 4 * mib, nil},
		{"4-byte aligned is enough", "", []Part{part("a", 0x1004, blob(4))}, "esp32", 4 * mib, nil},
		{"touching parts", "", []Part{part("a", 0x1000, blob(0x1000)), part("b", 0x2000, blob(1))}, "esp32", 4 * mib, nil},

		{"other platform", "esp32", []Part{part("a", 0x0, blob(4))}, "esp32c3", 4 * mib, ErrChipMismatch},
		{"unknown platform", "cc3200", []Part{part("a", 0x0, blob(4))}, "esp32", 4 * mib, ErrChipMismatch},
		{"unaligned", "", []Part{part("a", 0x1002, blob(4))}, "esp32", 4 * mib, ErrUnaligned},
		{"past the flash end", "", []Part{part("a", 4*mib-4096, blob(4097))}, "esp32", 4 * mib, ErrNoFit},
		{"past 4 GiB", "", []Part{part("a", 0xFFFFF000, blob(8192))}, "esp32", 4 * mib, ErrNoFit},
		{"overlap", "", []Part{part("a", 0x1000, blob(0x1001)), part("b", 0x2000, blob(4))}, "esp32", 4 * mib, ErrOverlap},
		{"overlap past a neighbour", "", []Part{part("big", 0x0, blob(0x10000)), part("b", 0x1000, blob(4)), part("c", 0x8000, blob(4))}, "esp32", 4 * mib, ErrOverlap},
		{"same address", "", []Part{part("a", 0x1000, blob(4)), part("b", 0x1000, blob(4))}, "esp32", 4 * mib, ErrOverlap},
		{"esp32 image on c3", "", []Part{part("a", 0x0, esp32Img)}, "esp32c3", 4 * mib, ErrImageChip},
		{"esp8266 image on esp32", "", []Part{part("a", 0x1000, esp8266Img)}, "esp32", 4 * mib, ErrImageChip},
		{"esp32 image on esp8266", "", []Part{typed(part("app", 0x0, esp32Img), "app")}, "esp8266", 4 * mib, ErrImageChip},
		{"image in a data part is not checked", "", []Part{typed(part("fs", 0x0, esp32Img), "fs")}, "esp32c3", 4 * mib, nil},
		{"parts not flashed are not checked", "", []Part{part("a", 0x1000, blob(4)), noFlash(part("b", 0x1002, esp32Img))}, "esp32c3", 4 * mib, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Bundle{Source: "fw.zip", Platform: tt.platform, Parts: tt.parts}
			b.sortParts()
			err := b.Validate(chip(t, tt.chip), tt.flashSize)
			if tt.kind == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			badInput(t, err, tt.kind)
		})
	}
}

func TestChipMismatchHint(t *testing.T) {
	b := &Bundle{Source: "fw.zip", Platform: "esp32", Parts: []Part{{Name: "a", Data: []byte{1}, Flash: true}}}
	err := b.Validate(chip(t, "esp32c3"), 0)
	var cm *ChipMismatchError
	if !errors.As(err, &cm) || cm.Platform != "esp32" || cm.Chip.Key != "esp32c3" {
		t.Fatalf("error %v", err)
	}
	if !strings.Contains(cm.Hint(), "--chip esp32") || err.Error() != "fw.zip is for esp32, but the board is an ESP32-C3" {
		t.Errorf("message %q, hint %q", err, cm.Hint())
	}
}

// A real bundle read back from its zip validates against its own chip.
func TestValidatePackedBundle(t *testing.T) {
	b, err := readZip(t, makeZip(t, entry{"manifest.json", manifestFor(goodParts())}, entry{"app.bin", appData}, entry{"boot.bin", bootData}))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(chip(t, "esp32"), 4<<20); err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(nil, 0); err == nil {
		t.Error("Validate without a chip passed")
	}
}

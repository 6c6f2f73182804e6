// Package fwbundle reads what `mos flash` is given and writes firmware
// bundles.
//
// A bundle is the Mongoose OS firmware zip: manifest.json (at the root or
// inside one top-level folder) lists the parts, each a file in the zip
// ("src") or a region filled with one byte ("fill"), with its flash address
// and SHA-1/SHA-256 checksums. Open checks every checksum before returning,
// so nothing reaches a device from a damaged bundle; Validate then checks
// the bundle against the board (chip, flash size) before any write. Other
// inputs (ADDR:FILE pairs, ESP-IDF's flasher_args.json) become the same
// Bundle through ParseInputs. Pack writes a bundle, byte for byte the same
// for the same input, and BuildSpec makes a bundle's contents from a
// recipe (a spec), which is how the project's demo firmware is made.
//
// Every bad input is reported as an error matching one of the Err* values,
// which also carries mos's exit code (9, bad input) and a hint.
package fwbundle

import (
	"fmt"
	"slices"
	"strings"
)

// Limits against zip bombs and mistaken inputs. The largest ESP flash is
// 128 MiB, and no real part comes close to MaxPartSize.
const (
	MaxPartSize     = 64 << 20  // bytes of one part, src or fill
	MaxTotalSize    = 128 << 20 // bytes of all parts together
	maxManifestSize = 1 << 20
)

// Bundle is a list of parts to flash, from a bundle zip or another input.
type Bundle struct {
	// Source is the file the bundle came from (the zip, flasher_args.json),
	// or "" for ADDR:FILE pairs.
	Source string
	// Platform is the chip key the firmware is for ("esp32"), or "" when
	// the input does not say (ADDR:FILE pairs).
	Platform string
	// Manifest is the bundle's manifest.json; nil for other inputs.
	Manifest *Manifest
	// Parts, sorted by address.
	Parts []Part
	// FlashMode, FlashSize and FlashFreq are the build's flash settings
	// ("dio", "4MB", "40m") where the input names them (flasher_args.json);
	// "" otherwise. They are what the flasher should write into the
	// bootloader header unless the user says otherwise.
	FlashMode, FlashSize, FlashFreq string
}

// Part is one region to write.
type Part struct {
	Name string
	Type string // manifest type: boot, pt, app, fs, nvs, ...; "" when unknown
	Addr uint32 // absolute flash address (partition names already resolved)
	Data []byte // src bytes, or Size bytes of the fill byte
	// Flash is the manifest's "flash" flag. mos's ESP flasher wrote every
	// part regardless; it is the flasher's choice to honour it.
	Flash bool
	// Source says where Data came from: "bundle.zip:app.bin", a file
	// path, or "fill 0xff".
	Source string
	// Manifest is the part's manifest entry (checksums, ptn, unknown
	// keys); nil for other inputs.
	Manifest *ManifestPart
}

// End is the address just past the part.
func (p *Part) End() uint64 { return uint64(p.Addr) + uint64(len(p.Data)) }

// Part returns the part with the given name, or nil.
func (b *Bundle) Part(name string) *Part {
	for i := range b.Parts {
		if b.Parts[i].Name == name {
			return &b.Parts[i]
		}
	}
	return nil
}

// Size is the number of bytes to write.
func (b *Bundle) Size() int {
	n := 0
	for _, p := range b.Parts {
		n += len(p.Data)
	}
	return n
}

// String describes the bundle in a few words, for messages.
func (b *Bundle) String() string {
	var s []string
	if m := b.Manifest; m != nil {
		s = append(s, strings.TrimSpace(m.Name+" "+m.Version))
	}
	if b.Platform != "" {
		s = append(s, "for "+b.Platform)
	}
	s = append(s, fmt.Sprintf("%d parts", len(b.Parts)))
	return strings.Join(s, ", ")
}

func (b *Bundle) sortParts() {
	slices.SortStableFunc(b.Parts, func(x, y Part) int {
		if x.Addr != y.Addr {
			if x.Addr < y.Addr {
				return -1
			}
			return 1
		}
		return strings.Compare(x.Name, y.Name)
	})
}

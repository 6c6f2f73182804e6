package fwbundle

import (
	"errors"
	"fmt"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwimage"
)

// Validate checks, before anything is written, that the bundle suits a
// board with the given chip and flash size (0: unknown, not checked):
//
//   - the bundle's platform, when it names one, is the chip
//     (*ChipMismatchError, whose hint names --chip);
//   - every part to flash starts on a 4-byte boundary, as the ROM's flash
//     writes require (esptool only warns below 4 KiB alignment, and the
//     flasher erases whole sectors around such a part, so that is allowed);
//   - every part fits the flash;
//   - no two parts to flash overlap;
//   - every ESP image among the parts (magic 0xE9/0xEA, parsed by fwimage)
//     is for the chip: this catches an ADDR:FILE list that has no platform.
//
// Parts with Flash false are not checked, as they are not written. The
// first problem found is returned, in the order above.
func (b *Bundle) Validate(chip *chips.Chip, flashSize int) error {
	if chip == nil {
		return errors.New("fwbundle: Validate needs the chip")
	}
	if b.Platform != "" && b.Platform != chip.Key {
		return &ChipMismatchError{File: b.source(), Platform: b.Platform, Chip: chip}
	}
	var flashed []*Part
	for i := range b.Parts {
		if b.Parts[i].Flash {
			flashed = append(flashed, &b.Parts[i])
		}
	}
	bad := func(kind error, p *Part, detail string, cause error) error {
		return &Error{Kind: kind, File: b.source(), Part: p.Name, Detail: detail, Cause: cause}
	}
	for _, p := range flashed {
		if p.Addr%4 != 0 {
			return bad(ErrUnaligned, p, fmt.Sprintf("address 0x%x", p.Addr), nil)
		}
	}
	for _, p := range flashed {
		if flashSize > 0 && p.End() > uint64(flashSize) {
			return bad(ErrNoFit, p, fmt.Sprintf("0x%x-0x%x, the flash ends at 0x%x (%s)", p.Addr, p.End(), flashSize, sizeName(flashSize)), nil)
		}
	}
	if err := b.CheckOverlap(); err != nil {
		return err
	}
	for _, p := range flashed {
		if err := checkImageChip(p, chip); err != nil {
			return bad(ErrImageChip, p, "", err)
		}
	}
	return nil
}

// checkImageChip reports an ESP image among p's data that is for another
// chip than c. Data that does not parse as an image is not an image, and
// not this check's business: data partitions may start with any byte.
func checkImageChip(p *Part, c *chips.Chip) error {
	if len(p.Data) == 0 || (p.Data[0] != fwimage.MagicV1 && p.Data[0] != fwimage.MagicV2) {
		return nil
	}
	if p.Type != "" && p.Type != "app" && p.Type != "boot" && p.Type != "bootloader" && p.Type != "fw" {
		return nil
	}
	img, err := fwimage.Parse(p.Data)
	if err != nil {
		return nil
	}
	return img.CheckChip(c)
}

func (b *Bundle) source() string {
	if b.Source == "" {
		return "the firmware"
	}
	return b.Source
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Overlap is two parts to flash that would overwrite each other.
type Overlap struct{ First, Second *Part }

func (o Overlap) String() string {
	return fmt.Sprintf("part %q at 0x%x-0x%x overlaps part %q at 0x%x-0x%x",
		o.Second.Name, o.Second.Addr, o.Second.End(), o.First.Name, o.First.Addr, o.First.End())
}

// Overlaps lists the parts to flash that overlap an earlier one. Parts are
// sorted by address, so only neighbours can overlap... except that a long
// part may reach past several short ones: the furthest end is tracked.
func (b *Bundle) Overlaps() []Overlap {
	var out []Overlap
	var prev *Part
	for i := range b.Parts {
		p := &b.Parts[i]
		if !p.Flash {
			continue
		}
		if prev != nil && uint64(p.Addr) < prev.End() {
			out = append(out, Overlap{prev, p})
		}
		if prev == nil || p.End() > prev.End() {
			prev = p
		}
	}
	return out
}

// CheckOverlap returns the first overlap as an *Error (ErrOverlap).
func (b *Bundle) CheckOverlap() error {
	ov := b.Overlaps()
	if len(ov) == 0 {
		return nil
	}
	o := ov[0]
	return &Error{Kind: ErrOverlap, File: b.source(), Part: o.Second.Name,
		Detail: fmt.Sprintf("0x%x-0x%x overlaps part %q at 0x%x-0x%x", o.Second.Addr, o.Second.End(), o.First.Name, o.First.Addr, o.First.End())}
}

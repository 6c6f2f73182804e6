package fwbundle

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwimage"
)

// FlashSummer is what a plan asks of the board: the MD5 of a flash range,
// to tell whether a data partition holds something a write would replace.
type FlashSummer interface {
	FlashMD5(ctx context.Context, addr uint32, size int) ([16]byte, error)
}

// PlanOptions are what the user asked for.
type PlanOptions struct {
	// Params are written into the bootloader's header (SHA-256
	// recomputed); fields left "keep" take the bundle's own settings
	// (flasher_args.json's flash_settings), if any.
	Params fwimage.FlashParams
	// KeepData leaves the parts that fall in the device's data partitions
	// (files, settings, keys) unwritten where the board holds data of its
	// own there (or may: when it cannot be read); an erased partition gets
	// the bundle's. `mos flash --keep-fs`, `mos provision`'s default.
	KeepData bool
}

// What a part that lies in a device-data partition would do to the board,
// as found by reading the board's flash before writing.
const (
	DataSame     = "same"     // the board holds the bundle's contents already
	DataBlank    = "blank"    // erased (all 0xFF): nothing to lose
	DataReplaced = "replaced" // the board holds other contents, which the write replaces
	DataUnknown  = "unknown"  // could not be read (the ESP8266 ROM has no MD5): may be replaced
	DataKept     = "kept"     // the board's data, left as it is (KeepData)
)

// PlannedPart is one part of the bundle as the plan treats it.
type PlannedPart struct {
	Name string
	Addr uint32
	Data []byte // to write; the bootloader's with the header patched
	// Partition is the label of the bundle's partition the part lies in
	// ("" without a partition table or outside every partition).
	Partition string
	// DeviceData: the part lies in a partition the device writes at run
	// time (see fwimage.Partition.HoldsDeviceData), or its manifest type
	// says so (fs, nvs).
	DeviceData bool
	// DataState is one of the Data* values for a DeviceData part, else "".
	DataState string
	// Patched: the flash parameters were written into this image's header.
	Patched bool
	// OwnsSectors: the part comes from a build (a bundle or
	// flasher_args.json), whose parts sit in 4 KiB-aligned partitions or
	// the bootloader area, so the rest of its last sector is its own
	// slack. False for ADDR:FILE pairs, whose neighbours are kept.
	OwnsSectors bool
}

// Plan is what `mos flash` will do with a bundle on a given board.
type Plan struct {
	Write []PlannedPart // in address order
	Kept  []PlannedPart // device-data parts left alone (KeepData)
}

// Replaced lists the parts to write whose data partitions on the board
// hold something else (or may: DataUnknown), which the write replaces.
func (p *Plan) Replaced() []PlannedPart {
	var r []PlannedPart
	for _, w := range p.Write {
		if w.DataState == DataReplaced || w.DataState == DataUnknown {
			r = append(r, w)
		}
	}
	return r
}

// ErrNothingToFlash means every part is marked flash: false or kept.
var ErrNothingToFlash = errors.New("nothing to flash")

// Plan works out what to write for the chip found and its flash size:
// the bundle is validated against both (Validate), parts marked flash:
// false are left out, the bootloader's header gets the flash parameters,
// and the parts that land in the device's data partitions are kept
// or not (KeepData) after comparing them with the board's flash through
// dev (nil when the loader cannot compute an MD5), so that the caller can
// say before writing what will be replaced.
func (b *Bundle) Plan(ctx context.Context, chip *chips.Chip, flashSize int, dev FlashSummer, o PlanOptions) (*Plan, error) {
	if err := b.Validate(chip, flashSize); err != nil {
		return nil, err
	}
	params := o.Params.Or(fwimage.FlashParams{Mode: b.FlashMode, Size: b.FlashSize, Freq: b.FlashFreq})
	// Checked whether or not there is a bootloader to patch: a setting the
	// chip cannot take is a mistake either way.
	if err := params.CheckChip(chip); err != nil {
		return nil, err
	}
	pt := b.partitionTable(chip)
	plan := &Plan{}
	for _, part := range b.Parts {
		if !part.Flash {
			continue
		}
		pp := PlannedPart{Name: part.Name, Addr: part.Addr, Data: part.Data, OwnsSectors: b.Source != ""}
		if pt != nil {
			if ptn := pt.Containing(part.Addr, len(part.Data)); ptn != nil {
				pp.Partition = ptn.Label
				pp.DeviceData = ptn.HoldsDeviceData()
			}
		}
		if part.Type == "fs" || part.Type == "nvs" {
			pp.DeviceData = true
		}
		if part.Addr == chip.BootloaderOffset {
			data, changed, err := fwimage.PatchFlashParams(chip, part.Data, params, flashSize)
			if err != nil {
				return nil, err
			}
			pp.Data, pp.Patched = data, changed
		}
		if pp.DeviceData {
			state, err := dataState(ctx, dev, pp)
			if err != nil {
				return nil, err
			}
			pp.DataState = state
			// Keeping is about the board's data: an erased partition (a
			// blank board) has none, and gets the bundle's, which the
			// firmware may need (a Mongoose OS fs holds its files).
			if o.KeepData && (state == DataReplaced || state == DataUnknown) {
				pp.DataState = DataKept
				plan.Kept = append(plan.Kept, pp)
				continue
			}
		}
		plan.Write = append(plan.Write, pp)
	}
	if len(plan.Write) == 0 {
		return nil, &Error{Kind: ErrNothingToFlash, File: b.source(), Detail: "every part is marked flash: false or kept"}
	}
	return plan, nil
}

// dataState compares a device-data part with what the board holds.
func dataState(ctx context.Context, dev FlashSummer, p PlannedPart) (string, error) {
	if dev == nil {
		return DataUnknown, nil
	}
	got, err := dev.FlashMD5(ctx, p.Addr, len(p.Data))
	if err != nil {
		return "", err
	}
	switch got {
	case md5.Sum(p.Data):
		return DataSame, nil
	case md5.Sum(bytes.Repeat([]byte{0xFF}, len(p.Data))):
		return DataBlank, nil
	}
	return DataReplaced, nil
}

// partitionTable is the bundle's partition table, if it has one that
// parses: the part of type "pt", or the part at the table's offset on the
// chips that have one there (not the ESP8266).
func (b *Bundle) partitionTable(chip *chips.Chip) *fwimage.PartitionTable {
	for _, p := range b.Parts {
		if p.Type == "pt" || (p.Type == "" && !chip.IsESP8266() && p.Addr == fwimage.PartitionTableOffset) {
			if pt, err := fwimage.ParsePartitionTable(p.Data); err == nil {
				return pt
			}
		}
	}
	return nil
}

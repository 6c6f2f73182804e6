package fwimage

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mos-tool/mos/chips"
)

// FlashParams are the flash settings to write into a bootloader image's
// header, as esptool's --flash-mode/--flash-size/--flash-freq take them.
// "keep" (or "") leaves a field as the image has it; Size may also be
// "detect", the size of the flash found on the board.
type FlashParams struct {
	Mode, Size, Freq string
}

// Keep reports whether the params leave the header alone.
func (f FlashParams) Keep() bool { return keep(f.Mode) && keep(f.Size) && keep(f.Freq) }

func keep(s string) bool { return s == "" || s == "keep" }

// Or fills the fields f keeps from def (the build's own settings).
func (f FlashParams) Or(def FlashParams) FlashParams {
	if keep(f.Mode) && def.Mode != "" {
		f.Mode = def.Mode
	}
	if keep(f.Size) && def.Size != "" {
		f.Size = def.Size
	}
	if keep(f.Freq) && def.Freq != "" {
		f.Freq = def.Freq
	}
	return f
}

// FlashParamError is a flash setting that is not valid (for the chip).
type FlashParamError struct {
	Field string // "mode", "size" or "freq"
	Value string
	Chip  *chips.Chip // nil: not valid for any chip
	Valid []string    // what would have been accepted
}

func (e *FlashParamError) Error() string {
	what := map[string]string{"mode": "flash mode", "size": "flash size", "freq": "flash frequency"}[e.Field]
	s := fmt.Sprintf("unknown %s %q", what, e.Value)
	if e.Chip != nil {
		s = fmt.Sprintf("%s %q is not one %s image headers can encode", what, e.Value, e.Chip.Name)
	}
	return s + " (" + strings.Join(e.Valid, ", ") + ")"
}

// ExitCode is mos's usage code (output.ExitUsage, a fixed contract): a
// flash setting comes from the command line.
func (e *FlashParamError) ExitCode() int { return 2 }

// Check validates the params without knowing the chip: each value must
// be valid for at least one chip. Call it before the board is touched;
// CheckChip then checks against the chip found.
func (f FlashParams) Check() error {
	if !keep(f.Mode) {
		if _, err := ModeCode(f.Mode); err != nil {
			return &FlashParamError{Field: "mode", Value: f.Mode, Valid: append([]string{"keep"}, flashModes...)}
		}
	}
	if !keep(f.Size) && f.Size != "detect" {
		ok := false
		for _, c := range chips.All() {
			if _, err := SizeCodeByName(c, f.Size); err == nil {
				ok = true
			}
		}
		if !ok {
			return &FlashParamError{Field: "size", Value: f.Size, Valid: []string{"keep", "detect", "1MB", "2MB", "4MB", "8MB", "16MB", "..."}}
		}
	}
	if !keep(f.Freq) {
		var all []string
		for _, c := range chips.All() {
			if _, err := FreqCode(c, f.Freq); err == nil {
				return nil
			}
			for _, fr := range FlashFreqs(c) {
				if !slices.Contains(all, fr.Name) {
					all = append(all, fr.Name)
				}
			}
		}
		return &FlashParamError{Field: "freq", Value: f.Freq, Valid: append([]string{"keep"}, all...)}
	}
	return nil
}

// CheckChip validates the params for chip c.
func (f FlashParams) CheckChip(c *chips.Chip) error {
	_, _, _, err := f.codes(c, 0, 0, 0, 0)
	return err
}

// codes returns the header's mode, size and frequency codes after
// applying f to the current ones; flashSize is the detected size for
// "detect" (0: unknown, only checked by CheckChip).
func (f FlashParams) codes(c *chips.Chip, flashSize int, mode, size, freq uint8) (uint8, uint8, uint8, error) {
	var err error
	if !keep(f.Mode) {
		if mode, err = ModeCode(f.Mode); err != nil {
			return 0, 0, 0, &FlashParamError{Field: "mode", Value: f.Mode, Valid: append([]string{"keep"}, flashModes...)}
		}
	}
	switch {
	case keep(f.Size):
	case f.Size == "detect":
		if flashSize > 0 {
			if size, err = SizeCode(c, flashSize); err != nil {
				return 0, 0, 0, &FlashParamError{Field: "size", Value: fmt.Sprintf("detect (%d bytes)", flashSize), Chip: c, Valid: sizeNames(c)}
			}
		}
	default:
		if size, err = SizeCodeByName(c, f.Size); err != nil {
			return 0, 0, 0, &FlashParamError{Field: "size", Value: f.Size, Chip: c, Valid: sizeNames(c)}
		}
	}
	if !keep(f.Freq) {
		if freq, err = FreqCode(c, f.Freq); err != nil {
			var valid []string
			for _, fr := range FlashFreqs(c) {
				valid = append(valid, fr.Name)
			}
			return 0, 0, 0, &FlashParamError{Field: "freq", Value: f.Freq, Chip: c, Valid: valid}
		}
	}
	return mode, size, freq, nil
}

func sizeNames(c *chips.Chip) []string {
	var s []string
	for _, fs := range FlashSizes(c) {
		s = append(s, fs.Name)
	}
	return s
}

// PatchFlashParams returns a copy of the bootloader image data with its
// header set to f (flashSize is the detected flash size, for "detect")
// and its appended SHA-256 recomputed, so that the ROM still accepts it;
// changed says whether any header byte differs. Data that is not a valid
// image for c is returned as it is: there is no header to patch.
func PatchFlashParams(c *chips.Chip, data []byte, f FlashParams, flashSize int) (out []byte, changed bool, err error) {
	if err := f.CheckChip(c); err != nil {
		return nil, false, err
	}
	if f.Keep() {
		return data, false, nil
	}
	img, err := ParseFor(c, data)
	if err != nil || img.Verify() != nil {
		return data, false, nil
	}
	mode, size, freq, err := f.codes(c, flashSize, img.FlashMode, img.FlashSizeCode, img.FlashFreqCode)
	if err != nil {
		return nil, false, err
	}
	out = append([]byte(nil), data...)
	if err := SetFlashParams(out, mode, size, freq); err != nil {
		return nil, false, err
	}
	return out, string(out[:img.Length]) != string(data[:img.Length]), nil
}

package fwbundle

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/mos-tool/mos/chips"
)

// What is wrong with an input. Every error this package returns for a bad
// input matches one of these (errors.Is) and carries the details.
var (
	ErrBadZip      = errors.New("not a readable firmware bundle zip")
	ErrNoManifest  = errors.New("no manifest.json in the bundle")
	ErrBadManifest = errors.New("invalid manifest")
	ErrMissingSrc  = errors.New("missing part file")
	ErrNoInput     = errors.New("cannot open") // the file given to flash
	ErrChecksum    = errors.New("checksum mismatch")
	ErrTooLarge    = errors.New("too large")

	// Validate's findings: the firmware does not suit the board.
	ErrChipMismatch = errors.New("firmware is for another chip")
	ErrImageChip    = errors.New("image is for another chip")
	ErrOverlap      = errors.New("parts overlap")
	ErrNoFit        = errors.New("part does not fit the flash")
	ErrUnaligned    = errors.New("part address is not 4-byte aligned")
)

// Exit codes of mos (output.ExitBadInput, output.ExitPermission), repeated
// here so that this library need not import the CLI's output package.
// Those numbers are a contract and never change.
const (
	exitBadInput   = 9
	exitPermission = 5
)

// Error is a bad input: a damaged bundle, a manifest naming a missing
// file, firmware that does not suit the board. It matches its Kind and
// wraps the Cause, and tells mos's error printer its exit code and a hint.
type Error struct {
	Kind   error  // one of the Err* values above
	File   string // the bundle or file the problem is in
	Part   string // the part concerned, if any
	Detail string // what exactly, for the message
	Cause  error  // the underlying error, if any
	// ListedIn is the file that named File (a flasher_args.json), when
	// File was not given on the command line.
	ListedIn string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	if e.Part != "" {
		fmt.Fprintf(&b, "part %q: ", e.Part)
	}
	b.WriteString(e.Kind.Error())
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.Cause != nil {
		b.WriteString(": " + e.Cause.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is find both the kind and the cause (such as
// fs.ErrNotExist).
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

// ExitCode is 9 (bad input file), except that a file mos may not read is a
// permission problem (5), which the user fixes differently.
func (e *Error) ExitCode() int {
	if errors.Is(e.Cause, fs.ErrPermission) {
		return exitPermission
	}
	return exitBadInput
}

// Hint says what to do about it.
func (e *Error) Hint() string {
	switch e.Kind {
	case ErrBadZip:
		if errors.Is(e.Cause, fs.ErrNotExist) {
			return "check the file name"
		}
		return "the file is damaged or not a firmware bundle: download or build it again (`mos fw info FILE` tells what a file is)"
	case ErrNoManifest:
		return "a firmware bundle has manifest.json at its root or inside one top-level folder: is this a bundle?"
	case ErrBadManifest:
		return "fix the manifest, or rebuild the bundle with `mos fw pack`"
	case ErrNoInput:
		return "check the file name"
	case ErrMissingSrc:
		if errors.Is(e.Cause, fs.ErrNotExist) {
			if e.ListedIn != "" {
				return "paths in " + e.ListedIn + " are relative to its folder: was the build moved or cleaned?"
			}
			return "check the file name"
		}
		return "the bundle is incomplete: download or build it again"
	case ErrChecksum:
		return "the bundle is damaged (a part does not match its checksum): download or build it again"
	case ErrTooLarge:
		return fmt.Sprintf("a part may hold at most %d MiB and a bundle %d MiB; is this really firmware?", MaxPartSize>>20, MaxTotalSize>>20)
	case ErrImageChip:
		return "use firmware built for this board's chip (`mos fw info FILE` shows which chip an image is for)"
	case ErrOverlap:
		return "two parts would overwrite each other: fix their addresses"
	case ErrNoFit:
		return "the firmware is larger than this board's flash: use a build for this flash size"
	case ErrUnaligned:
		return "flash addresses must be multiples of 4 (normally of 4096, a flash sector)"
	}
	return ""
}

// ChecksumError is a part whose data does not match the manifest's
// checksum. It matches ErrChecksum.
type ChecksumError struct {
	File, Part string
	Algo       string // "sha1" or "sha256"
	Want, Got  string // lowercase hex
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: part %q: %s mismatch: manifest says %s, data has %s", e.File, e.Part, e.Algo, e.Want, e.Got)
}
func (e *ChecksumError) Is(target error) bool { return target == ErrChecksum }
func (e *ChecksumError) ExitCode() int        { return exitBadInput }
func (e *ChecksumError) Hint() string         { return (&Error{Kind: ErrChecksum}).Hint() }

// ChipMismatchError is firmware for another platform than the board's
// chip. It matches ErrChipMismatch.
type ChipMismatchError struct {
	File     string
	Platform string      // as the bundle says: "esp32"
	Chip     *chips.Chip // the board's chip
}

func (e *ChipMismatchError) Error() string {
	return fmt.Sprintf("%s is for %s, but the board is an %s", e.File, e.Platform, e.Chip.Name)
}
func (e *ChipMismatchError) Is(target error) bool { return target == ErrChipMismatch }
func (e *ChipMismatchError) ExitCode() int        { return exitBadInput }

// Hint names --chip because detection can be wrong (a clone with odd
// magic values) and the user must be able to overrule it.
func (e *ChipMismatchError) Hint() string {
	return fmt.Sprintf("flash a bundle built for %s; if the chip was detected wrongly, --chip %s overrides detection",
		e.Chip.Key, e.Platform)
}

// ArgError is a mistake in the arguments naming what to flash (a bad
// address, a file without one). It is a usage error: exit code 2.
type ArgError struct {
	Arg string
	Msg string
}

func (e *ArgError) Error() string {
	if e.Arg == "" {
		return e.Msg
	}
	return fmt.Sprintf("%q: %s", e.Arg, e.Msg)
}
func (e *ArgError) ExitCode() int { return 2 } // output.ExitUsage
func (e *ArgError) Hint() string {
	return "give a bundle (BUNDLE.zip), ESP-IDF's build/flasher_args.json, or ADDR:FILE pairs " +
		"such as 0x1000:bootloader.bin 0x8000:partition-table.bin 0x10000:app.bin"
}

package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/fwbundle"
	"github.com/mos-tool/mos/fwimage"
	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
)

// fastBaud is the rate flash commands work at unless --baud says otherwise.
const fastBaud = 921600

type flashOptions struct {
	resetOptions
	force     bool
	noStub    bool
	chip      string
	flashMode string
	flashSize string
	flashFreq string
	keepFS    bool
	// noPreserve lets ADDR:FILE regions that do not fill their 4 KiB
	// sectors erase the rest of them.
	noPreserve bool
}

func newFlashCmd(a *app) *cobra.Command {
	var o flashOptions
	cmd := &cobra.Command{
		Use:   "flash [BUNDLE.zip | flasher_args.json | ADDR:FILE ...]",
		Short: "Write firmware to the board's flash, verified, skipping what is already there",
		Long: "Write a firmware bundle (mos zip with manifest.json), ESP-IDF's flasher_args.json,\n" +
			"or ADDR:FILE pairs. The chip is detected, the flasher stub uploaded and the link\n" +
			"moved to a fast baud (921600 unless --baud says otherwise, lower when the link gives\n" +
			"errors). Each region is compared with the flash first and only what differs is\n" +
			"written, compressed; every region written is verified by MD5.",
		Example: "  mos flash firmware-images/esp32-demo.zip\n" +
			"  mos flash 0x1000:bootloader.bin 0x8000:partitions.bin 0x10000:app.bin\n" +
			"  mos flash build/flasher_args.json --baud 2000000",
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return usageErr(cmd, err)
			}
			baud := fastBaud
			if cmd.Flags().Changed("baud") {
				baud = a.opts.Baud
			}
			return runFlash(cmd.Context(), a, o, baud, args)
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.force, "force", false, "write every region even when the flash already holds it")
	f.BoolVar(&o.noStub, "no-stub", false, "talk to the ROM loader only (slower; the ESP8266 ROM cannot verify)")
	f.StringVar(&o.chip, "chip", "", "treat the board as this chip instead of the detected one")
	f.StringVar(&o.flashMode, "flash-mode", "keep", "bootloader flash mode: keep, qio, qout, dio, dout")
	f.StringVar(&o.flashSize, "flash-size", "keep", "bootloader flash size: keep, detect, or e.g. 4MB")
	f.StringVar(&o.flashFreq, "flash-freq", "keep", "bootloader flash frequency: keep, 80m, 40m, 26m, 20m")
	f.BoolVar(&o.keepFS, "keep-fs", false, "do not write the bundle's filesystem part (keep the files and config on the board)")
	f.BoolVar(&o.noPreserve, "no-preserve", false, "let a region that does not start and end on a 4 KiB sector boundary erase the rest of its sectors (by default they are read and kept)")
	return cmd
}

// flashResult is what `mos flash` reports.
type flashResult struct {
	Chip     string                 `json:"chip"`
	Port     string                 `json:"port"`
	Baud     int                    `json:"baud"`
	Stub     bool                   `json:"stub"`
	Seconds  float64                `json:"seconds"`
	Regions  []flasher.RegionReport `json:"regions"`
	Complete bool                   `json:"complete"`
}

func (r flashResult) Data() any { return r }

func (r flashResult) Text() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "REGION\tADDRESS\tSIZE\tSTATE\tSENT\n")
	written := 0
	for _, reg := range r.Regions {
		state := reg.State
		if reg.State == flasher.StateVerified && reg.SectorsSkipped > 0 {
			state = fmt.Sprintf("verified (%d sectors unchanged)", reg.SectorsSkipped)
		}
		fmt.Fprintf(tw, "%s\t0x%06X\t%d\t%s\t%d\n", reg.Name, reg.Addr, reg.Size, state, reg.BytesSent)
		written += reg.BytesWritten
	}
	tw.Flush()
	verdict := "done"
	if !r.Complete {
		verdict = "INCOMPLETE"
	}
	fmt.Fprintf(&b, "%s: %s, %d bytes written in %.1f s at %d baud", verdict, r.Chip, written, r.Seconds, r.Baud)
	return b.String()
}

func runFlash(ctx context.Context, a *app, o flashOptions, baud int, args []string) error {
	// Everything that can be checked without the board is checked first:
	// a corrupt bundle never gets as far as touching the flash.
	bundle, err := fwbundle.ParseInputs(args)
	if err != nil {
		return err
	}
	var forced *chips.Chip
	if o.chip != "" {
		if forced, err = chips.ByKey(o.chip); err != nil {
			return output.Usagef("--chip: %v", err)
		}
	}
	start := time.Now()
	p, l, err := openSession(ctx, a, o.resetOptions, baud, o.noStub)
	if err != nil {
		return err
	}
	defer p.Close()
	chip := l.Chip
	if forced != nil && forced != chip {
		a.out.Warnf("treating the detected %s as %s (--chip)", chip.Name, forced.Name)
		chip = forced
	}
	skipFS := func(p fwbundle.Part) bool { return o.keepFS && p.Type == "fs" }
	regions, err := bundleRegions(ctx, a, l, chip, bundle, o, skipFS)
	if err != nil {
		return err
	}
	reports, werr := l.WriteRegions(ctx, regions, flasher.WriteOptions{Force: o.force, NoPreserve: o.noPreserve,
		Progress: writeProgress(a), Warn: func(m string) { a.out.Warnf("%s", m) }})
	res := flashResult{Chip: chip.Name, Port: p.Name(), Baud: p.BaudRate(), Stub: l.Stub,
		Seconds: time.Since(start).Seconds(), Regions: reports, Complete: werr == nil}
	for _, r := range reports {
		if r.State == flasher.StateUnverified {
			a.out.Warnf("%s at 0x%X was written but NOT verified: the %s ROM cannot compute MD5 (run without --no-stub to verify)", r.Name, r.Addr, chip.Name)
		}
	}
	if werr == nil {
		if err := finish(ctx, p, o.resetOptions); err != nil {
			return err
		}
	}
	if err := a.out.Print(res); err != nil {
		return err
	}
	return werr
}

// openSession opens the port and gets a loader ready at the working baud.
func openSession(ctx context.Context, a *app, o resetOptions, baud int, noStub bool) (port.Port, *flasher.Loader, error) {
	p, err := port.Open(ctx, a.opts.Port, port.DefaultBaud)
	if err != nil {
		return nil, nil, err
	}
	l, err := flasher.Open(ctx, p, sessionOptions(a, o.reset, baud, noStub))
	if err != nil {
		p.Close()
		return nil, nil, err
	}
	return p, l, nil
}

// sessionOptions are the flasher session settings every command uses:
// messages go through the printer, and a board that does not answer gets
// --timeout to be put into download mode by hand.
func sessionOptions(a *app, reset string, baud int, noStub bool) flasher.SessionOptions {
	return flasher.SessionOptions{
		Connect: flasher.ConnectOptions{
			Reset:      reset,
			ManualWait: a.opts.Timeout,
			Status:     func(m string) { a.out.Debugf("%s", m) },
			Prompt:     func(m string) { a.out.Infof("%s", m) },
		},
		Baud:   baud,
		NoStub: noStub,
		Warn:   func(m string) { a.out.Warnf("%s", m) },
	}
}

// flashSize reads the flash chip's size from its JEDEC ID.
func flashSize(ctx context.Context, a *app, l *flasher.Loader) (int, error) {
	id, err := l.FlashID(ctx)
	if err != nil {
		return 0, err
	}
	size := flasher.FlashSizeFromID(id)
	if size == 0 {
		a.out.Warnf("unknown flash ID 0x%06X: assuming 4 MiB", id)
		size = 4 << 20
	}
	return size, nil
}

// bundleRegions gets the flash ready for a bundle and returns the regions
// to write: the flash size read from the chip, the bundle checked against
// chip and size, and the bootloader's header patched to the flash
// parameters asked for (flags first, then those of flasher_args.json).
// Parts marked flash: false, and those skip selects, are left out.
func bundleRegions(ctx context.Context, a *app, l *flasher.Loader, chip *chips.Chip, b *fwbundle.Bundle, o flashOptions, skip func(fwbundle.Part) bool) ([]flasher.Region, error) {
	size, err := flashSize(ctx, a, l)
	if err != nil {
		return nil, err
	}
	if err := l.AttachFlash(ctx, size); err != nil {
		return nil, err
	}
	if err := b.Validate(chip, size); err != nil {
		return nil, err
	}
	if o.flashMode == "keep" && b.FlashMode != "" {
		o.flashMode = b.FlashMode
	}
	if o.flashSize == "keep" && b.FlashSize != "" {
		o.flashSize = b.FlashSize
	}
	if o.flashFreq == "keep" && b.FlashFreq != "" {
		o.flashFreq = b.FlashFreq
	}
	var regions []flasher.Region
	for _, part := range b.Parts {
		if !part.Flash || skip(part) {
			continue
		}
		data := part.Data
		if part.Addr == chip.BootloaderOffset {
			patched, changed, err := patchFlashParams(chip, data, size, o)
			if err != nil {
				return nil, err
			}
			if changed {
				a.out.Infof("%s: flash parameters set in the bootloader header (SHA-256 recomputed)", part.Name)
			}
			data = patched
		}
		regions = append(regions, flasher.Region{Name: part.Name, Addr: part.Addr, Data: data})
	}
	if len(regions) == 0 {
		return nil, output.Usagef("nothing to flash: every part is marked flash: false")
	}
	return regions, nil
}

// writeProgress renders the flasher's progress through the printer.
func writeProgress(a *app) flasher.Progress {
	progress := a.out.Progress()
	return func(stage, part string, done, total int64) {
		progress.Report(output.ProgressEvent{Stage: stage, Part: part, Done: done, Total: total})
	}
}

// patchFlashParams sets the mode/size/frequency bytes of a bootloader
// image as asked ("keep" leaves each), recomputing its appended SHA-256 so
// that the ROM still accepts it. Data that is not a valid image is left
// alone.
func patchFlashParams(chip *chips.Chip, data []byte, size int, o flashOptions) ([]byte, bool, error) {
	if o.flashMode == "keep" && o.flashSize == "keep" && o.flashFreq == "keep" {
		return data, false, nil
	}
	img, err := fwimage.ParseFor(chip, data)
	if err != nil || img.Verify() != nil {
		return data, false, nil
	}
	mode, sizeCode, freq := img.FlashMode, img.FlashSizeCode, img.FlashFreqCode
	if o.flashMode != "keep" {
		if mode, err = fwimage.ModeCode(o.flashMode); err != nil {
			return nil, false, output.Usagef("--flash-mode: %v", err)
		}
	}
	switch o.flashSize {
	case "keep":
	case "detect":
		if sizeCode, err = fwimage.SizeCode(chip, size); err != nil {
			return nil, false, output.Usagef("--flash-size detect: %v", err)
		}
	default:
		if sizeCode, err = fwimage.SizeCodeByName(chip, o.flashSize); err != nil {
			return nil, false, output.Usagef("--flash-size: %v", err)
		}
	}
	if o.flashFreq != "keep" {
		if freq, err = fwimage.FreqCode(chip, o.flashFreq); err != nil {
			return nil, false, output.Usagef("--flash-freq: %v", err)
		}
	}
	out := append([]byte(nil), data...)
	if err := fwimage.SetFlashParams(out, mode, sizeCode, freq); err != nil {
		return nil, false, err
	}
	return out, string(out[:img.Length]) != string(data[:img.Length]), nil
}
